/**
 * Reading cgroup control files. Cgroup files come and go with the cgroup (and with the
 * kernel's accounting options), so "missing" is an answer, not an error.
 */

import { posix } from "node:path";
import { locateController, type CgroupLayout } from "./layout.ts";
import { readOptionalFile } from "../../core/optional-file.ts";

/**
 * v1 prints "no limit" as the page counter maximum (9223372036854771712 with 4 KiB pages);
 * anything this large is no limit on any real machine.
 */
const unlimitedThreshold = 2 ** 62;

/** A limit file ("max" on v2, a huge number on v1 for none) in bytes; Infinity for no limit. */
export function parseLimit(text: string): number {
  const trimmed = text.trim();
  if (trimmed === "max") return Infinity;
  return limitFromBytes(parseCount(trimmed));
}

/** A limit already read as a number (memory.stat's hierarchical_* lines); Infinity for no limit. */
export function limitFromBytes(value: number): number {
  return value >= unlimitedThreshold ? Infinity : value;
}

/** A single non-negative integer (memory.current, memory.usage_in_bytes, …). */
export function parseCount(text: string): number {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) throw new Error(`not a cgroup counter: ${JSON.stringify(trimmed.slice(0, 40))}`);
  return Number(trimmed);
}

/** "key value" lines (memory.stat, cpu.stat) → key → value; malformed lines are skipped. */
export function parseFlatKeyed(text: string): Map<string, number> {
  // A hand-written scanner: memory.stat has ~40 lines and is parsed at every meminfo open.
  const values = new Map<string, number>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const space = text.indexOf(" ", start);
    if (space > start && space < end - 1) {
      const digits = text.slice(space + 1, end);
      if (isDigits(digits)) values.set(text.slice(start, space), Number(digits));
    }
    start = end + 1;
  }
  return values;
}

function isDigits(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return text.length > 0;
}

/** A controller's directory for a cgroup and for each of its ancestors, nearest first. */
export interface CgroupChain {
  version: 1 | 2;
  /** chain[0] is the cgroup itself, the last entry the hierarchy's root. */
  chain: string[];
}

/**
 * A cgroup by its path below each hierarchy's root: one path for every hierarchy (what
 * runtimes create, and what an NRI record holds), or per controller as /proc/<pid>/cgroup
 * lists them (key "" for the v2 hierarchy; see core/cgroup-path.ts parseProcCgroup).
 */
export type CgroupPaths = string | ReadonlyMap<string, string>;

/** The cgroup's path in the hierarchy that holds `controller` (a v1 one, else the unified one). */
export function relativePathFor(layout: CgroupLayout, controller: string, paths: CgroupPaths): string | undefined {
  return typeof paths === "string" ? paths : paths.get(layout.v1.has(controller) ? controller : "");
}

/** Where `controller`'s files are for the cgroup; undefined when no hierarchy has it for this cgroup. */
export function locateCgroupChain(layout: CgroupLayout, controller: string, paths: CgroupPaths): CgroupChain | undefined {
  const relativePath = relativePathFor(layout, controller, paths);
  if (relativePath === undefined) return undefined;
  const location = locateController(layout, controller, relativePath);
  if (location === undefined) return undefined;
  const mountRoot = location.version === 1 ? layout.v1.get(controller) : layout.unified;
  if (mountRoot === undefined) return undefined;
  const chain: string[] = [];
  let path = posix.normalize("/" + relativePath);
  for (;;) {
    chain.push(path === "/" ? mountRoot : posix.join(mountRoot, path));
    if (path === "/") return { version: location.version, chain };
    path = posix.dirname(path);
  }
}

/** The smallest limit in `file` over the chain; files missing at some level are skipped. */
export function smallestLimit(chain: readonly string[], file: string): { limit: number; found: boolean } {
  let limit = Infinity;
  let found = false;
  for (const dir of chain) {
    const text = readOptionalFile(`${dir}/${file}`);
    if (text === undefined) continue;
    found = true;
    limit = Math.min(limit, parseLimit(text));
  }
  return { limit, found };
}

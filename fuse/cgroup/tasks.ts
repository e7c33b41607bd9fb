/** The processes and threads of a cgroup and of every cgroup below it (a container may nest its own). */

import { existsSync, readdirSync } from "node:fs";
import type { CgroupLayout } from "../../core/cgroup-path.ts";
import { readOptionalFile, readRequiredFile } from "../reader/optional-file.ts";
import { locateCgroupChain, type CgroupChain, type CgroupPaths } from "./files.ts";

/** Nesting deeper than this is not a container layout; the bound keeps a pathological tree from stalling a read. */
const maxDepth = 8;

export type TaskKind = "processes" | "threads";

/**
 * Ids (host pid namespace) of the cgroup's processes or threads, its descendants' included.
 * Throws an ENOENT error when the cgroup itself does not exist.
 */
export function readCgroupTasks(layout: CgroupLayout, cgroup: CgroupPaths, kind: TaskKind): number[] {
  const located = locateCpuCgroup(layout, cgroup);
  const file = kind === "processes" ? "cgroup.procs" : located.version === 1 ? "tasks" : "cgroup.threads";
  const ids: number[] = [];
  collectIds(readRequiredFile(`${located.chain[0]}/${file}`), ids);
  collectDescendants(located.chain[0], file, ids, 1);
  return ids;
}

/** Throws an ENOENT error when the cgroup does not exist (any more), as reading its tasks would. */
export function requireCgroup(layout: CgroupLayout, cgroup: CgroupPaths): void {
  const dir = locateCpuCgroup(layout, cgroup).chain[0];
  if (!existsSync(dir)) throw Object.assign(new Error(`cgroup missing: ${dir}`), { code: "ENOENT" });
}

function locateCpuCgroup(layout: CgroupLayout, cgroup: CgroupPaths): CgroupChain {
  const located = locateCgroupChain(layout, "cpu", cgroup);
  if (located === undefined) throw new Error("no cpu cgroup hierarchy holds this cgroup");
  return located;
}

function collectDescendants(dir: string, file: string, ids: number[], depth: number): void {
  if (depth > maxDepth) return;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    // The cgroup went away while we walked it: its tasks went with it.
    return;
  }
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const child = `${dir}/${entry.name}`;
    const text = readOptionalFile(`${child}/${file}`);
    if (text !== undefined) collectIds(text, ids);
    collectDescendants(child, file, ids, depth + 1);
  }
}

function collectIds(text: string, ids: number[]): void {
  for (const line of text.split("\n")) {
    if (/^\d+$/.test(line)) ids.push(Number(line));
  }
}

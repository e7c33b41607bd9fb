/** The processes and threads of a cgroup and of every cgroup below it (a container may nest its own). */

import { existsSync, readdirSync } from "node:fs";
import type { CgroupLayout } from "./layout.ts";
import { readOptionalFile, readRequiredFile } from "../../core/optional-file.ts";
import { locateCgroupChain, relativePathFor, type CgroupChain, type CgroupPaths } from "./files.ts";

/** Nesting deeper than this is not a container layout; the bound keeps a pathological tree from stalling a read. */
const maxDepth = 8;

export type TaskKind = "processes" | "threads";

/**
 * Hierarchies that can hold a container, most telling first ("" is the unified one). A
 * container limited only in memory or cpuset sits at the root of the cpu hierarchy; its
 * processes are found in whichever hierarchy places it below the root.
 */
const containerControllers = ["cpu", "cpuacct", "memory", "pids", "cpuset", "blkio", ""] as const;

/** The first hierarchy where the cgroup is not the root; undefined for a process of the host itself. */
export function containerController(layout: CgroupLayout, cgroup: CgroupPaths): string | undefined {
  return containerControllers.find((controller) => {
    // A controller no v1 hierarchy mounts is looked up in the unified one (relativePathFor's rule).
    if (!layout.v1.has(controller) && layout.unified === undefined) return false;
    const path = relativePathFor(layout, controller, cgroup);
    return path !== undefined && path !== "/";
  });
}

/**
 * Ids (host pid namespace) of the cgroup's processes or threads, its descendants' included,
 * from the hierarchy of `controller` (cpu by default; "" for the unified one).
 * Throws an ENOENT error when the cgroup itself does not exist.
 */
export function readCgroupTasks(layout: CgroupLayout, cgroup: CgroupPaths, kind: TaskKind, controller = "cpu"): number[] {
  const located = locateTaskCgroup(layout, cgroup, controller);
  const file = kind === "processes" ? "cgroup.procs" : located.version === 1 ? "tasks" : "cgroup.threads";
  const ids: number[] = [];
  collectIds(readRequiredFile(`${located.chain[0]}/${file}`), ids);
  collectDescendants(located.chain[0], file, ids, 1);
  return ids;
}

/** Throws an ENOENT error when the cgroup does not exist (any more) in `controller`'s hierarchy, as reading its tasks would. */
export function requireCgroup(layout: CgroupLayout, cgroup: CgroupPaths, controller = "cpu"): void {
  const dir = locateTaskCgroup(layout, cgroup, controller).chain[0];
  if (!existsSync(dir)) throw Object.assign(new Error(`cgroup missing: ${dir}`), { code: "ENOENT" });
}

function locateTaskCgroup(layout: CgroupLayout, cgroup: CgroupPaths, controller: string): CgroupChain {
  const located = locateCgroupChain(layout, controller, cgroup);
  if (located === undefined) throw new Error(`no ${controller || "unified"} cgroup hierarchy holds this cgroup`);
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

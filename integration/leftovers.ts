/**
 * What a private containerd can leave on the host after it stops: shims (they outlive
 * containerd by design), container processes, anything else still in its mount
 * namespace, cgroup folders. Synchronous on purpose:
 * the process-exit safety net can only run synchronous code.
 */

import { readdirSync, readFileSync, readlinkSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { parseMountinfo } from "../core/mountinfo.ts";

/** Shims started by the containerd listening on `grpcAddress` (they carry `-address <it>`). */
export function shimPids(grpcAddress: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = readOrEmpty(`/proc/${entry}/cmdline`).split("\0");
    const address = argv.indexOf("-address");
    if (address >= 0 && argv[address + 1] === grpcAddress && argv[0].endsWith("containerd-shim-runc-v2")) {
      pids.push(Number(entry));
    }
  }
  return pids;
}

/** Every process in the mount namespace `namespace` (as /proc/<pid>/ns/mnt reads, "mnt:[…]"). */
export function mountNamespaceMembers(namespace: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/mnt`) === namespace) pids.push(Number(entry));
    } catch {
      // Gone, or a zombie: it has left every namespace.
    }
  }
  return pids;
}

/** Every process in the cgroup trees rooted at `dirs` (absent trees count as empty). */
export function cgroupMembers(dirs: readonly string[]): number[] {
  const members = new Set<number>();
  for (const dir of dirs) {
    for (const cgroup of cgroupTree(dir)) {
      for (const line of readOrEmpty(join(cgroup, "cgroup.procs")).split("\n")) {
        if (line !== "") members.add(Number(line));
      }
    }
  }
  return [...members];
}

/**
 * Removes the cgroup trees, children first. A killed process leaves its cgroup a moment
 * later (EBUSY until then): returns the folders still there, for the caller to retry.
 */
/**
 * Removes the cgroups, waiting up to `timeoutMs` for exiting tasks to leave them (a task
 * may linger a moment after its parent saw it die); throws naming those still busy.
 */
export async function removeCgroupTreesWhenIdle(dirs: readonly string[], timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let remaining = removeCgroupTrees(dirs);
  while (remaining.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    remaining = removeCgroupTrees(remaining);
  }
  if (remaining.length > 0) throw new Error(`cgroup folders still busy: ${remaining.join(", ")}`);
}

export function removeCgroupTrees(dirs: readonly string[]): string[] {
  const remaining: string[] = [];
  for (const dir of dirs) {
    for (const cgroup of cgroupTree(dir).reverse()) {
      try {
        rmdirSync(cgroup);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== "ENOENT") remaining.push(cgroup);
      }
    }
  }
  return remaining;
}

export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }
}

/** A zombie has finished: only its parent's wait() is missing. */
export function isRunning(pid: number): boolean {
  const stat = readOrEmpty(`/proc/${pid}/stat`);
  if (stat === "") return false;
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

/** `dir` and every folder below it, parents first; empty when `dir` does not exist. */
function cgroupTree(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const tree = [dir];
  for (const entry of entries) {
    if (entry.isDirectory()) tree.push(...cgroupTree(join(dir, entry.name)));
  }
  return tree;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    // The process or cgroup went away while we looked: nothing left to find there.
    return "";
  }
}

/** Mount points at or below `dir`, deepest first, so each can be unmounted in order. */
export function mountPointsBelow(mountinfo: string, dir: string): string[] {
  const base = dir.replace(/\/+$/, "");
  const below = parseMountinfo(mountinfo)
    .map((entry) => entry.mountPoint)
    .filter((point) => point === base || point.startsWith(base + "/"));
  return [...new Set(below)].sort((a, b) => b.split("/").length - a.split("/").length || b.localeCompare(a));
}

/**
 * Root of every cgroup hierarchy: v1 controllers, named v1 hierarchies such as
 * name=systemd (dockerd's cgroupfs driver creates the parent there too) and cgroup2.
 */
export function cgroupHierarchyRoots(mountinfo: string): string[] {
  const roots = parseMountinfo(mountinfo)
    .filter((entry) => entry.fsType === "cgroup" || entry.fsType === "cgroup2")
    .map((entry) => entry.mountPoint);
  return [...new Set(roots)];
}

/**
 * Real cgroups for the tests that read views through real mounts: one path made in every
 * hierarchy the views read (v1, hybrid or v2), with limits, holding a process. Needs root
 * and a writable cgroup hierarchy.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { locateController, parseCgroupLayout } from "../../views/cgroup/layout.ts";
import { removeCgroupTreesWhenIdle } from "../../integration/leftovers.ts";

export const testLayout = parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
const controllers = ["memory", "cpu", "cpuacct", "cpuset", "blkio"];

export interface TestCgroup {
  path: string;
  dirs: string[];
  /** The process it was made with (a sleep unless the caller spawned another). */
  child: ChildProcess;
}

/** A cgroup at `path` in every hierarchy, with a memory limit and optionally a cpuset, holding `child` (a sleep by default). */
export function makeCgroup(path: string, memoryLimit: number, cpus: string | undefined, child?: ChildProcess): TestCgroup {
  const dirs = [...new Set(controllers.map((controller) => locateController(testLayout, controller, path)!.dir))];
  for (const dir of dirs) mkdirSync(dir);
  const cgroup: TestCgroup = { path, dirs, child: child ?? spawn("sleep", ["300"], { stdio: "ignore" }) };
  for (const dir of dirs) {
    if (existsSync(join(dir, "memory.limit_in_bytes"))) writeFileSync(join(dir, "memory.limit_in_bytes"), String(memoryLimit));
    if (existsSync(join(dir, "memory.max"))) writeFileSync(join(dir, "memory.max"), String(memoryLimit));
    // A v1 cpuset cgroup takes no task before it has CPUs and memory nodes.
    if (existsSync(join(dir, "cpuset.mems"))) {
      writeFileSync(join(dir, "cpuset.mems"), readFileSync(join(posix.dirname(dir), "cpuset.effective_mems"), "utf8").trim() || "0");
      writeFileSync(join(dir, "cpuset.cpus"), cpus ?? readFileSync(join(posix.dirname(dir), "cpuset.effective_cpus"), "utf8").trim());
    } else if (cpus !== undefined && existsSync(join(dir, "cpuset.cpus"))) {
      writeFileSync(join(dir, "cpuset.cpus"), cpus);
    }
    writeFileSync(join(dir, "cgroup.procs"), String(cgroup.child.pid));
  }
  return cgroup;
}

/** Moves a process of the cgroup to the cgroup's parent in every hierarchy, so the cgroup can go while it lives. */
export function moveToParentCgroup(cgroup: TestCgroup, pid: number): void {
  for (const dir of cgroup.dirs) writeFileSync(join(posix.dirname(dir), "cgroup.procs"), String(pid));
}

/** Kills the cgroup's process and removes its folders (waiting a bounded time for exiting tasks). */
export async function removeCgroup(cgroup: TestCgroup): Promise<void> {
  if (cgroup.child.exitCode === null && cgroup.child.signalCode === null) {
    const exited = once(cgroup.child, "exit");
    cgroup.child.kill("SIGKILL");
    await exited;
  }
  await removeCgroupTreesWhenIdle(cgroup.dirs);
}

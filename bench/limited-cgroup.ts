/**
 * A cgroup with a memory limit, a cpuset and a CPU quota, made directly in the host's
 * hierarchies (root needed) so that processes moved into it look like a container's to
 * both LXCFS and procview. cgroup v1 (one folder per controller hierarchy, as on this
 * project's hybrid hosts) and v2 (one folder; the root must delegate memory, cpu and
 * cpuset through cgroup.subtree_control).
 */

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { parseCgroupLayout, type CgroupLayout } from "../views/cgroup/layout.ts";
import { removeCgroupTrees, removeCgroupTreesWhenIdle } from "../integration/leftovers.ts";

export interface CgroupLimits {
  memoryBytes: number;
  /** cpuset.cpus, e.g. "0". */
  cpus: string;
  cpuQuotaUs: number;
  cpuPeriodUs: number;
}

export interface LimitedCgroup {
  /** The path relative to every hierarchy root, as /proc/<pid>/cgroup and the container registry name it. */
  readonly relativePath: string;
  readonly limits: CgroupLimits;
  /** Moves a whole process (all its threads) into the cgroup in every hierarchy. */
  addProcess(pid: number): void;
  /** Removes the folders; the processes moved in must have exited. Retries while the kernel still counts them. */
  remove(): Promise<void>;
}

/** v1 hierarchies LXCFS and procview read: limits (memory, cpuset, cpu) and usage (cpuacct, blkio). */
const v1Controllers = ["memory", "cpuset", "cpu", "cpuacct", "blkio"] as const;

export function createLimitedCgroup(
  namePrefix: string,
  limits: CgroupLimits,
  layout: CgroupLayout = parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8")),
): LimitedCgroup {
  checkLimits(limits);
  const relativePath = `/${namePrefix}-${randomBytes(4).toString("hex")}`;
  const hierarchyRoots = [...new Set(v1Controllers.map((name) => layout.v1.get(name)).filter((root) => root !== undefined))];
  if (layout.unified !== undefined) hierarchyRoots.push(layout.unified);
  const dirs = hierarchyRoots.map((root) => posix.join(root, relativePath));
  try {
    for (const dir of dirs) mkdirSync(dir);
    applyLimits(layout, relativePath, limits);
  } catch (error) {
    removeCgroupTrees(dirs);
    throw new Error(`cannot set up cgroup ${relativePath}: ${(error as Error).message}`, { cause: error });
  }
  let removing: Promise<void> | undefined;
  return {
    relativePath,
    limits,
    addProcess(pid) {
      for (const dir of dirs) writeFileSync(join(dir, "cgroup.procs"), `${pid}\n`);
    },
    remove() {
      removing ??= removeCgroupTreesWhenIdle(dirs);
      return removing;
    },
  };
}

function applyLimits(layout: CgroupLayout, relativePath: string, limits: CgroupLimits): void {
  const v1 = (controller: string) => {
    const root = layout.v1.get(controller);
    return root === undefined ? undefined : posix.join(root, relativePath);
  };
  const v2 = layout.unified === undefined ? undefined : posix.join(layout.unified, relativePath);
  const needV2 = (file: string): string => {
    if (v2 === undefined || !existsSync(join(v2, file))) {
      throw new Error(`no v1 hierarchy for it and ${file} is not delegated to cgroup v2 children (cgroup.subtree_control)`);
    }
    return join(v2, file);
  };

  const memory = v1("memory");
  if (memory !== undefined) writeFileSync(join(memory, "memory.limit_in_bytes"), `${limits.memoryBytes}`);
  else writeFileSync(needV2("memory.max"), `${limits.memoryBytes}`);

  const cpuset = v1("cpuset");
  if (cpuset !== undefined) {
    // A v1 cpuset starts empty and takes no process until both lists are set.
    const parentMems = readFileSync(join(cpuset, "..", "cpuset.mems"), "utf8").trim();
    writeFileSync(join(cpuset, "cpuset.mems"), parentMems);
    writeFileSync(join(cpuset, "cpuset.cpus"), limits.cpus);
  } else {
    writeFileSync(needV2("cpuset.cpus"), limits.cpus);
  }

  const cpu = v1("cpu");
  if (cpu !== undefined) {
    writeFileSync(join(cpu, "cpu.cfs_period_us"), `${limits.cpuPeriodUs}`);
    writeFileSync(join(cpu, "cpu.cfs_quota_us"), `${limits.cpuQuotaUs}`);
  } else {
    writeFileSync(needV2("cpu.max"), `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`);
  }
}

function checkLimits(limits: CgroupLimits): void {
  const positive = (name: keyof CgroupLimits) => {
    const value = limits[name];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
      throw new Error(`cgroup limit ${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
  };
  positive("memoryBytes");
  positive("cpuQuotaUs");
  positive("cpuPeriodUs");
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(limits.cpus)) throw new Error(`cgroup cpus must be a CPU list like "0" or "0-1", got ${JSON.stringify(limits.cpus)}`);
}

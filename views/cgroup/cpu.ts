/** A cgroup's CPU figures: which CPUs it may run on, its quota, and the CPU time it used. */

import { statSync } from "node:fs";
import type { CgroupLayout } from "./layout.ts";
import { parseCpuList } from "./cpu-list.ts";
import { locateCgroupChain, parseFlatKeyed, type CgroupPaths } from "./files.ts";
import { readOptionalFile, readRequiredFile } from "../../core/optional-file.ts";

/** The kernel's USER_HZ: /proc/stat and cpuacct.stat count in these ticks on every Linux architecture procview runs on. */
export const userHz = 100;

export interface CpuTime {
  /** Nanoseconds. */
  user: number;
  /** Nanoseconds. */
  system: number;
}

/** Where the cgroup may run. */
export interface CpuPlacement {
  /** The effective cpuset (host CPU numbers, sorted); undefined when no cpuset controller says. */
  cpuset: number[] | undefined;
  /** The smallest quota/period over the cgroup and its ancestors, in CPUs; Infinity when none. */
  quotaCpus: number;
}

export interface CpuSnapshot extends CpuPlacement {
  /** CPU time used by the cgroup and its descendants. */
  usage: CpuTime;
  /** The same split by host CPU where the kernel keeps it (v1 cpuacct.usage_all); undefined otherwise. */
  perCpu: ReadonlyMap<number, CpuTime> | undefined;
}

/** Throws an ENOENT error when the cgroup does not exist (any more). `placement`: one read a moment ago. */
export function readCpuSnapshot(layout: CgroupLayout, cgroup: CgroupPaths, placement?: CpuPlacement): CpuSnapshot {
  const accounting = locateCgroupChain(layout, "cpuacct", cgroup);
  if (accounting === undefined) throw new Error("no cpu accounting cgroup hierarchy holds this cgroup");
  const { usage, perCpu } = accounting.version === 1 ? readV1Usage(accounting.chain[0]) : readV2Usage(accounting.chain[0]);
  return { ...(placement ?? readCpuPlacement(layout, cgroup)), usage, perCpu };
}

/**
 * When the cgroup that accounts the CPU time was created (ms since the epoch): its counters
 * start at 0 then. cgroupfs sets a cgroup directory's times at mkdir and never after
 * (tasks joining or leaving, writes to its files, child cgroups leave them alone).
 * Throws an ENOENT error when the cgroup does not exist.
 */
export function readCpuAccountingBirth(layout: CgroupLayout, cgroup: CgroupPaths): number {
  const accounting = locateCgroupChain(layout, "cpuacct", cgroup);
  if (accounting === undefined) throw new Error("no cpu accounting cgroup hierarchy holds this cgroup");
  return statSync(accounting.chain[0]).mtimeMs;
}

/** Throws an ENOENT error when the cgroup does not exist (any more). */
export function readCpuPlacement(layout: CgroupLayout, cgroup: CgroupPaths): CpuPlacement {
  const cpu = locateCgroupChain(layout, "cpu", cgroup);
  if (cpu === undefined) throw new Error("no cpu cgroup hierarchy holds this cgroup");
  readRequiredFile(`${cpu.chain[0]}/cgroup.procs`);
  // The v2 root cgroup has no cpu.max: only its descendants can have a quota.
  const quotaChain = cpu.version === 2 ? cpu.chain.slice(0, -1) : cpu.chain;
  return { cpuset: readEffectiveCpuset(layout, cgroup), quotaCpus: readQuotaCpus(quotaChain, cpu.version) };
}

function readV1Usage(dir: string): { usage: CpuTime; perCpu: Map<number, CpuTime> | undefined } {
  const all = readOptionalFile(`${dir}/cpuacct.usage_all`);
  if (all !== undefined) {
    const perCpu = parseUsageAll(all);
    const usage = { user: 0, system: 0 };
    for (const time of perCpu.values()) {
      usage.user += time.user;
      usage.system += time.system;
    }
    return { usage, perCpu };
  }
  // Kernels before 4.7 have no usage_all; cpuacct.stat has the split in USER_HZ ticks.
  const stat = parseFlatKeyed(readRequiredFile(`${dir}/cpuacct.stat`));
  const tickNs = 1e9 / userHz;
  return { usage: { user: (stat.get("user") ?? 0) * tickNs, system: (stat.get("system") ?? 0) * tickNs }, perCpu: undefined };
}

/** "cpu user system" header, then one "<cpu> <user ns> <system ns>" line per host CPU. */
export function parseUsageAll(text: string): Map<number, CpuTime> {
  const perCpu = new Map<number, CpuTime>();
  for (const line of text.split("\n")) {
    const match = /^(\d+) (\d+) (\d+)$/.exec(line.trim());
    if (match) perCpu.set(Number(match[1]), { user: Number(match[2]), system: Number(match[3]) });
  }
  return perCpu;
}

function readV2Usage(dir: string): { usage: CpuTime; perCpu: undefined } {
  const stat = parseFlatKeyed(readRequiredFile(`${dir}/cpu.stat`));
  return { usage: { user: (stat.get("user_usec") ?? 0) * 1000, system: (stat.get("system_usec") ?? 0) * 1000 }, perCpu: undefined };
}

function readEffectiveCpuset(layout: CgroupLayout, cgroup: CgroupPaths): number[] | undefined {
  const located = locateCgroupChain(layout, "cpuset", cgroup);
  if (located === undefined) return undefined;
  const names = located.version === 1 ? ["cpuset.effective_cpus", "cpuset.cpus"] : ["cpuset.cpus.effective"];
  // On v2 the file exists only where the controller is enabled; an ancestor's set is what the cgroup inherits.
  const dirs = located.version === 1 ? located.chain.slice(0, 1) : located.chain;
  for (const dir of dirs) {
    for (const name of names) {
      const text = readOptionalFile(`${dir}/${name}`);
      if (text === undefined) continue;
      const cpus = parseCpuList(text);
      if (cpus.length > 0) return cpus;
    }
  }
  return undefined;
}

function readQuotaCpus(chain: readonly string[], version: 1 | 2): number {
  let quotaCpus = Infinity;
  for (const dir of chain) {
    const ratio = version === 1 ? readV1Quota(dir) : readV2Quota(dir);
    if (ratio !== undefined) quotaCpus = Math.min(quotaCpus, ratio);
  }
  return quotaCpus;
}

function readV1Quota(dir: string): number | undefined {
  const quota = readOptionalFile(`${dir}/cpu.cfs_quota_us`);
  const period = readOptionalFile(`${dir}/cpu.cfs_period_us`);
  if (quota === undefined || period === undefined) return undefined;
  return quotaRatio(quota.trim(), period.trim());
}

function readV2Quota(dir: string): number | undefined {
  const max = readOptionalFile(`${dir}/cpu.max`);
  if (max === undefined) return undefined;
  const [quota = "", period = ""] = max.trim().split(" ");
  return quotaRatio(quota, period);
}

/** undefined for no quota ("max", -1) or nonsense; the kernel rejects periods below 1 ms. */
function quotaRatio(quota: string, period: string): number | undefined {
  if (!/^\d+$/.test(quota) || !/^\d+$/.test(period)) return undefined;
  const periodUs = Number(period);
  return periodUs > 0 ? Number(quota) / periodUs : undefined;
}

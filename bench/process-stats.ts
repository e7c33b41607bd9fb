/**
 * CPU time and memory of a running daemon, read from /proc/<pid>: the benchmark charges
 * each target's daemon for what it spent serving the reads.
 */

import { readFileSync } from "node:fs";

// /proc reports CPU in USER_HZ ticks, which Linux fixes at 100 on every architecture.
const nsPerTick = 10_000_000n;

/** User + system CPU of the whole process (all threads), in nanoseconds. */
export function processCpuNs(pid: number): bigint {
  return parseCpuTicks(readFileSync(`/proc/${pid}/stat`, "utf8")) * nsPerTick;
}

/** utime + stime from /proc/<pid>/stat text; the command name may hold spaces and parentheses. */
export function parseCpuTicks(stat: string): bigint {
  // Fields 14 and 15 of the line.
  return statTicks(stat, 11);
}

/**
 * User + system CPU of this process's children that have ended and been waited for
 * (cutime + cstime), in nanoseconds: the cost of short-lived commands it ran.
 */
export function endedChildrenCpuNs(): bigint {
  return parseChildrenCpuTicks(readFileSync("/proc/self/stat", "utf8")) * nsPerTick;
}

/** cutime + cstime from /proc/<pid>/stat text. */
export function parseChildrenCpuTicks(stat: string): bigint {
  // Fields 16 and 17 of the line.
  return statTicks(stat, 13);
}

/** The sum of the two tick counts at `index` and the next, counted from field 3 (state). */
function statTicks(stat: string, index: number): bigint {
  const afterName = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const first = afterName[index];
  const second = afterName[index + 1];
  if (first === undefined || second === undefined || !/^\d+$/.test(first) || !/^\d+$/.test(second)) {
    throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(stat.slice(0, 80))}`);
  }
  return BigInt(first) + BigInt(second);
}

export interface ProcessMemory {
  rssKiB: number;
  /** The highest RSS the process has had (VmHWM). */
  peakRssKiB: number;
  /** The part of the RSS that is pages of files (RssFile): mostly the executable's. */
  fileKiB: number;
}

export function processMemory(pid: number): ProcessMemory {
  return parseProcessMemory(readFileSync(`/proc/${pid}/status`, "utf8"));
}

export function parseProcessMemory(status: string): ProcessMemory {
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
    if (match === null) throw new Error(`/proc/<pid>/status has no ${field} line`);
    return Number(match[1]);
  };
  return { rssKiB: kib("VmRSS"), peakRssKiB: kib("VmHWM"), fileKiB: kib("RssFile") };
}

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
  const afterName = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of the line; afterName starts at field 3 (state).
  const utime = afterName[11];
  const stime = afterName[12];
  if (utime === undefined || stime === undefined || !/^\d+$/.test(utime) || !/^\d+$/.test(stime)) {
    throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(stat.slice(0, 80))}`);
  }
  return BigInt(utime) + BigInt(stime);
}

export interface ProcessMemory {
  rssKiB: number;
  /** The highest RSS the process has had (VmHWM). */
  peakRssKiB: number;
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
  return { rssKiB: kib("VmRSS"), peakRssKiB: kib("VmHWM") };
}

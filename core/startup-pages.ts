/**
 * Giving back the pages of the executable a long-running server touched only while it
 * started. A Node (or Deno) process maps its 100+ MiB executable, and starting touches a
 * large part of it (bootstrap code, the startup snapshot, module loading): some 45 MiB of
 * the FUSE server's RSS, of which serving needs about half. Those pages are clean copies
 * of the file. madvise(MADV_PAGEOUT) has the kernel reclaim the ones only this process
 * maps; the ones another process maps too (the NRI plugin runs the same executable) it
 * leaves, and MADV_DONTNEED then takes them out of this process alone, leaving them in
 * the page cache for the other. What serving uses faults back in at its next use, from
 * the page cache or the disk, so the RSS left is the pages used since.
 */

import { readFileSync, readlinkSync } from "node:fs";
import type { Logger } from "./log.ts";
import { syscalls } from "./syscalls.ts";

/** linux/mman.h: reclaim the range's pages now (Linux ≥ 5.4). */
export const MADV_PAGEOUT = 21;
/** linux/mman.h: unmap the range's pages from this process; a file's are read again from it at the next use. */
export const MADV_DONTNEED = 4;

export interface FileMapping {
  start: number;
  end: number;
  path: string;
  /** Pages of the mapping the process changed (relocations in a RELRO segment): no longer the file's. */
  anonymousKiB: number;
}

/**
 * The read-only mappings of files in /proc/<pid>/smaps text: code and constant data.
 * Writable mappings hold the process's changes, and the kernel's own ([vdso], [vsyscall])
 * and anonymous-inode mappings are no file's.
 */
export function readOnlyFileMappings(smaps: string): FileMapping[] {
  const mappings: FileMapping[] = [];
  let current: FileMapping | undefined;
  for (const line of smaps.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header !== null) {
      const [, start, end, permissions, path] = header;
      current = path.startsWith("/") && permissions[1] !== "w" ? { start: Number.parseInt(start, 16), end: Number.parseInt(end, 16), path, anonymousKiB: 0 } : undefined;
      if (current !== undefined) mappings.push(current);
      continue;
    }
    const anonymous = /^Anonymous:\s+(\d+) kB$/.exec(line);
    if (anonymous !== null && current !== undefined) current.anonymousKiB = Number(anonymous[1]);
  }
  return mappings;
}

/** RSS and its file-backed part, in KiB, from /proc/<pid>/status text. */
export function residentKiB(status: string): { rss: number; file: number } {
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rss: field("VmRSS"), file: field("RssFile") };
}

export interface StartupPagesRelease {
  /** Bytes of mappings advised. */
  advisedBytes: number;
  before: { rss: number; file: number };
  after: { rss: number; file: number };
}

/**
 * Pages out every read-only file mapping of this process, then unmaps what stayed of the
 * executable's own, where every page is still the file's (an executable's mappings last as
 * long as the process, so none can turn into other memory meanwhile). Throws if the kernel
 * refuses (before 5.4: EINVAL).
 */
export function releaseStartupPages(): StartupPagesRelease {
  const before = residentKiB(readFileSync("/proc/self/status", "utf8"));
  const executable = readlinkSync("/proc/self/exe");
  let advisedBytes = 0;
  for (const mapping of readOnlyFileMappings(readFileSync("/proc/self/smaps", "utf8"))) {
    const length = mapping.end - mapping.start;
    syscalls().madvise(mapping.start, length, MADV_PAGEOUT);
    if (mapping.path === executable && mapping.anonymousKiB === 0) syscalls().madvise(mapping.start, length, MADV_DONTNEED);
    advisedBytes += length;
  }
  return { advisedBytes, before, after: residentKiB(readFileSync("/proc/self/status", "utf8")) };
}

/** How long a long-running command (fuse, nri, run) runs before it gives its startup pages back: its first requests have been served by then. */
export const startupPagesDelayMs = 10_000;

/** KiB as the MiB a log record carries, to a tenth. */
export function loggedMiB(kib: number): number {
  return Math.round(kib / 102.4) / 10;
}

/** releaseStartupPages, logged; a kernel that refuses leaves the pages where they are, until memory runs short. */
export function giveBackStartupPages(logger: Logger): void {
  try {
    const { before, after } = releaseStartupPages();
    logger.info("startup pages given back", { rssMiB: [loggedMiB(before.rss), loggedMiB(after.rss)], fileBackedMiB: [loggedMiB(before.file), loggedMiB(after.file)] });
  } catch (err) {
    logger.warn("cannot give startup pages back (MADV_PAGEOUT needs Linux 5.4)", { err });
  }
}

/**
 * A cgroup's memory figures, read once per open of a memory view. Both cgroup versions
 * are normalised here, so the renderers deal with one shape.
 */

import { posix } from "node:path";
import type { CgroupLayout } from "../../core/cgroup-path.ts";
import {
  locateCgroupChain,
  parseCount,
  parseFlatKeyed,
  readRequiredFile,
  smallestLimit,
  type CgroupPaths,
} from "./files.ts";
import { readOptionalFile } from "../reader/optional-file.ts";

export interface SwapSnapshot {
  /** Swap the cgroup may use, bytes; Infinity when unlimited. */
  limit: number;
  /** Swap in use, bytes. */
  usage: number;
}

export interface MemorySnapshot {
  /** The smallest memory limit over the cgroup and all its ancestors, bytes; Infinity when none. */
  limit: number;
  /** Memory charged to the cgroup, bytes (page cache included). */
  usage: number;
  /**
   * memory.stat in bytes under cgroup v2 key names (active_file, file, anon, …); on v1
   * taken from the hierarchical total_* keys, which include the cgroup's descendants.
   */
  stat: ReadonlyMap<string, number>;
  /** Undefined when the kernel does not account the cgroup's swap (v1 without swapaccount). */
  swap: SwapSnapshot | undefined;
}

/** cgroup v1 memory.stat total_* keys that have a differently named v2 counterpart. */
const v1StatNames: ReadonlyMap<string, string> = new Map([
  ["cache", "file"],
  ["rss", "anon"],
  ["rss_huge", "anon_thp"],
  ["mapped_file", "file_mapped"],
  ["dirty", "file_dirty"],
  ["writeback", "file_writeback"],
]);

/**
 * Reads the memory snapshot of `cgroup` (an NRI record's cgroupPath, or a reader's /proc/<pid>/cgroup paths).
 * Throws an ENOENT error when the cgroup does not exist (any more).
 */
export function readMemorySnapshot(layout: CgroupLayout, cgroup: CgroupPaths): MemorySnapshot {
  const located = locateCgroupChain(layout, "memory", cgroup);
  if (located === undefined) throw new Error("no memory cgroup hierarchy holds this cgroup");
  return located.version === 1 ? readV1(located.chain) : readV2(located.chain);
}

function readV1(chain: readonly string[]): MemorySnapshot {
  const dir = chain[0];
  const usage = parseCount(readRequiredFile(dir, "memory.usage_in_bytes"));
  const limit = smallestLimit(chain, "memory.limit_in_bytes").limit;
  const stat = new Map<string, number>();
  for (const [key, value] of parseFlatKeyed(readOptionalFile(posix.join(dir, "memory.stat")) ?? "")) {
    if (!key.startsWith("total_")) continue;
    const name = key.slice("total_".length);
    stat.set(v1StatNames.get(name) ?? name, value);
  }
  return { limit, usage, stat, swap: readV1Swap(chain, limit, usage) };
}

/** v1 accounts memory+swap together (memsw); swap is what memsw allows beyond memory. */
function readV1Swap(chain: readonly string[], memoryLimit: number, memoryUsage: number): SwapSnapshot | undefined {
  const memsw = smallestLimit(chain, "memory.memsw.limit_in_bytes");
  const memswUsageText = readOptionalFile(posix.join(chain[0], "memory.memsw.usage_in_bytes"));
  if (!memsw.found || memswUsageText === undefined) return undefined;
  const usage = Math.max(0, parseCount(memswUsageText) - memoryUsage);
  const swappiness = readOptionalFile(posix.join(chain[0], "memory.swappiness"));
  // The kernel does not swap out a cgroup whose swappiness is 0: it has no swap to offer.
  if (swappiness !== undefined && swappiness.trim() === "0") return { limit: 0, usage };
  const limit = memsw.limit === Infinity || memoryLimit === Infinity ? Infinity : Math.max(0, memsw.limit - memoryLimit);
  return { limit, usage };
}

function readV2(chain: readonly string[]): MemorySnapshot {
  const dir = chain[0];
  const usage = parseCount(readRequiredFile(dir, "memory.current"));
  const limit = smallestLimit(chain, "memory.max").limit;
  const stat = parseFlatKeyed(readOptionalFile(posix.join(dir, "memory.stat")) ?? "");
  const swapMax = smallestLimit(chain, "memory.swap.max");
  const swapCurrent = readOptionalFile(posix.join(dir, "memory.swap.current"));
  const swap = swapMax.found && swapCurrent !== undefined ? { limit: swapMax.limit, usage: parseCount(swapCurrent) } : undefined;
  return { limit, usage, stat, swap };
}

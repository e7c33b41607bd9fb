/**
 * A cgroup's memory figures, read once per open of a memory view. Both cgroup versions
 * are normalised here, so the renderers deal with one shape.
 */

import type { CgroupLayout } from "./layout.ts";
import {
  locateCgroupChain,
  parseCount,
  limitFromBytes,
  parseFlatKeyed,
  smallestLimit,
  type CgroupPaths,
} from "./files.ts";
import { readOptionalFile, readRequiredFile } from "../../core/optional-file.ts";

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
  const usage = parseCount(readRequiredFile(`${dir}/memory.usage_in_bytes`));
  const rawStat = parseFlatKeyed(readOptionalFile(`${dir}/memory.stat`) ?? "");
  const stat = new Map<string, number>();
  for (const [key, value] of rawStat) {
    if (!key.startsWith("total_")) continue;
    const name = key.slice("total_".length);
    stat.set(v1StatNames.get(name) ?? name, value);
  }
  // The kernel prints the smallest limit over the cgroup and its ancestors in memory.stat;
  // reading it there saves a file per ancestor on every open.
  const limit = hierarchicalLimit(rawStat, "hierarchical_memory_limit") ?? smallestLimit(chain, "memory.limit_in_bytes").limit;
  return { limit, usage, stat, swap: readV1Swap(chain, rawStat, limit, usage) };
}

function hierarchicalLimit(rawStat: ReadonlyMap<string, number>, key: string): number | undefined {
  const value = rawStat.get(key);
  return value === undefined ? undefined : limitFromBytes(value);
}

/**
 * v1 accounts memory+swap together (memsw); swap is what memsw allows beyond memory. With
 * swap accounting on, memory.stat carries the hierarchical memsw limit and the swap in use,
 * so only swappiness needs another file.
 */
function readV1Swap(chain: readonly string[], rawStat: ReadonlyMap<string, number>, memoryLimit: number, memoryUsage: number): SwapSnapshot | undefined {
  const statSwap = rawStat.get("total_swap");
  let usage: number;
  let memswLimit: number;
  if (statSwap !== undefined && rawStat.has("hierarchical_memsw_limit")) {
    usage = statSwap;
    memswLimit = hierarchicalLimit(rawStat, "hierarchical_memsw_limit") ?? Infinity;
  } else {
    const memswUsageText = readOptionalFile(`${chain[0]}/memory.memsw.usage_in_bytes`);
    // Without swap accounting (swapaccount=0) there are no memsw files.
    if (memswUsageText === undefined) return undefined;
    usage = Math.max(0, parseCount(memswUsageText) - memoryUsage);
    memswLimit = smallestLimit(chain, "memory.memsw.limit_in_bytes").limit;
  }
  const swappiness = readOptionalFile(`${chain[0]}/memory.swappiness`);
  // The kernel does not swap out a cgroup whose swappiness is 0: it has no swap to offer
  // beyond what it already uses.
  if (swappiness !== undefined && swappiness.trim() === "0") return { limit: usage, usage };
  const limit = memswLimit === Infinity || memoryLimit === Infinity ? Infinity : Math.max(0, memswLimit - memoryLimit);
  return { limit, usage };
}

function readV2(chain: readonly string[]): MemorySnapshot {
  const dir = chain[0];
  const usage = parseCount(readRequiredFile(`${dir}/memory.current`));
  // The v2 root cgroup has no limit files: only its descendants can be limited.
  const limited = chain.slice(0, -1);
  const limit = smallestLimit(limited, "memory.max").limit;
  const stat = parseFlatKeyed(readOptionalFile(`${dir}/memory.stat`) ?? "");
  const swapMax = smallestLimit(limited, "memory.swap.max");
  const swapCurrent = readOptionalFile(`${dir}/memory.swap.current`);
  const swap = swapMax.found && swapCurrent !== undefined ? { limit: swapMax.limit, usage: parseCount(swapCurrent) } : undefined;
  return { limit, usage, stat, swap };
}

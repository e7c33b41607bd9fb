/**
 * /proc/meminfo as a container should see it: its own limit as MemTotal, its own usage
 * breakdown, host values for the lines no cgroup tells (Vmalloc*, HugePages_*, Commit*,
 * DirectMap*, …).
 */

import type { MemorySnapshot } from "../cgroup/memory.ts";
import type { HostMeminfo } from "../host/meminfo.ts";

/** meminfo lines that are one memory.stat counter (cgroup v2 names; see cgroup/memory.ts). */
const statLines: ReadonlyMap<string, string> = new Map([
  ["Cached", "file"],
  ["SwapCached", "swapcached"],
  ["Active(anon)", "active_anon"],
  ["Inactive(anon)", "inactive_anon"],
  ["Active(file)", "active_file"],
  ["Inactive(file)", "inactive_file"],
  ["Unevictable", "unevictable"],
  ["Dirty", "file_dirty"],
  ["Writeback", "file_writeback"],
  ["AnonPages", "anon"],
  ["Mapped", "file_mapped"],
  ["Shmem", "shmem"],
  ["KReclaimable", "slab_reclaimable"],
  ["SReclaimable", "slab_reclaimable"],
  ["SUnreclaim", "slab_unreclaimable"],
  ["KernelStack", "kernel_stack"],
  ["PageTables", "pagetables"],
  ["SecPageTables", "sec_pagetables"],
  ["Percpu", "percpu"],
  ["AnonHugePages", "anon_thp"],
  ["ShmemHugePages", "shmem_thp"],
  ["FileHugePages", "file_thp"],
  ["Zswap", "zswap"],
  ["Zswapped", "zswapped"],
]);

/**
 * Lines that break down the container's memory but that no cgroup version counts: 0, as
 * README promises, not the host's figure (the host's Mlocked next to the container's
 * `Unevictable: 0 kB` would claim more locked memory than the container holds).
 */
const uncountedLines = ["Mlocked", "ShmemPmdMapped", "FilePmdMapped", "NFS_Unstable", "Bounce", "WritebackTmp"];

/** The container's value (kB) for every line it has one for. */
export function containerMeminfoValues(memory: MemorySnapshot, host: HostMeminfo): Map<string, number> {
  const hostValue = (name: string): number => host.values.get(name) ?? 0;
  const statKb = (key: string): number | undefined => {
    const bytes = memory.stat.get(key);
    return bytes === undefined ? undefined : kb(bytes);
  };
  // Without a limit below the host's, the container competes for the host's free memory:
  // promising it more than the host has free would be a lie.
  const limited = kb(memory.limit) < hostValue("MemTotal");
  const total = Math.min(kb(memory.limit), hostValue("MemTotal"));
  const used = Math.min(kb(memory.usage), total);
  const reclaimable = (statKb("active_file") ?? 0) + (statKb("inactive_file") ?? 0) + (statKb("slab_reclaimable") ?? 0);
  const free = limited ? total - used : Math.min(total - used, hostValue("MemFree"));
  const available = Math.min(total, limited ? free + reclaimable : Math.min(free + reclaimable, hostValue("MemAvailable")));

  const values = new Map<string, number>([
    ["MemTotal", total],
    ["MemFree", free],
    ["MemAvailable", available],
    // cgroups charge block-device buffers as page cache; it shows under Cached.
    ["Buffers", 0],
  ]);
  // These lines break down the container's own memory. Where its cgroup version does not
  // count one (slab on v1), 0 is shown: the host's figure would charge the host's memory
  // to the container, and `free` subtracts Cached and SReclaimable from MemTotal - MemFree.
  for (const [line, key] of statLines) values.set(line, Math.min(statKb(key) ?? 0, total));
  for (const line of uncountedLines) values.set(line, 0);
  const slab = statKb("slab") ?? (statKb("slab_reclaimable") ?? 0) + (statKb("slab_unreclaimable") ?? 0);
  values.set("Slab", Math.min(slab, total));
  values.set("Active", Math.min(values.get("Active(anon)")! + values.get("Active(file)")!, total));
  values.set("Inactive", Math.min(values.get("Inactive(anon)")! + values.get("Inactive(file)")!, total));

  if (memory.swap !== undefined) {
    const unlimitedSwap = kb(memory.swap.limit) >= hostValue("SwapTotal");
    const swapTotal = Math.min(kb(memory.swap.limit), hostValue("SwapTotal"));
    const swapFree = Math.max(0, swapTotal - kb(memory.swap.usage));
    values.set("SwapTotal", swapTotal);
    values.set("SwapFree", unlimitedSwap ? Math.min(swapFree, hostValue("SwapFree")) : swapFree);
  }
  return values;
}

/** Every line the host prints, in the host's order, the container's value where it has one. */
export function renderMeminfo(memory: MemorySnapshot, host: HostMeminfo): string {
  const values = containerMeminfoValues(memory, host);
  let text = "";
  for (const line of host.lines) {
    text += formatMeminfoLine(line.name, Math.max(0, values.get(line.name) ?? line.value), line.hasKbUnit);
  }
  return text;
}

/** The kernel's layout: name and colon padded to 16 columns, the number right-aligned in 8. */
export function formatMeminfoLine(name: string, value: number, hasKbUnit: boolean): string {
  return `${(name + ":").padEnd(16)}${String(value).padStart(8)}${hasKbUnit ? " kB" : ""}\n`;
}

function kb(bytes: number): number {
  return bytes === Infinity ? Infinity : Math.floor(Math.max(0, bytes) / 1024);
}

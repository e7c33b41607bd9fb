/** /proc/diskstats for a container: the host's devices it did I/O on, with its own counters. */

import type { IoSnapshot } from "../cgroup/io.ts";
import type { HostDisk } from "../host/diskstats.ts";

const sectorBytes = 512;

/**
 * Host order and names, only devices with any I/O by the cgroup (as LXCFS does), as many
 * columns as the host kernel prints. Counters the cgroup does not keep (in flight, queue
 * time, flushes) are 0.
 */
export function renderDiskstats(io: IoSnapshot, hostDisks: readonly HostDisk[]): string {
  let text = "";
  for (const disk of hostDisks) {
    const stats = io.get(`${disk.major}:${disk.minor}`);
    if (stats === undefined) continue;
    const counters = [
      stats.readOps,
      stats.readMerged,
      Math.floor(stats.readBytes / sectorBytes),
      stats.readMs,
      stats.writeOps,
      stats.writeMerged,
      Math.floor(stats.writeBytes / sectorBytes),
      stats.writeMs,
      0,
      stats.readMs + stats.writeMs,
      stats.readMs + stats.writeMs,
      stats.discardOps,
      0,
      Math.floor(stats.discardBytes / sectorBytes),
      0,
      0,
      0,
    ];
    if (counters.every((value) => value === 0)) continue;
    const columns = counters.slice(0, disk.counters.length);
    while (columns.length < disk.counters.length) columns.push(0);
    text += `${String(disk.major).padStart(4)} ${String(disk.minor).padStart(7)} ${disk.name} ${columns.join(" ")}\n`;
  }
  return text;
}

/** /proc/diskstats for a container: the host's devices, with the container's own counters. */

import { emptyDeviceIo, type IoSnapshot } from "../cgroup/io.ts";
import type { HostDisk } from "../host/diskstats.ts";

const sectorBytes = 512;

/**
 * Every device the host lists, in its order, with its names and as many columns as its
 * kernel prints; the counters are the cgroup's, 0 where it has none for the device (no I/O
 * yet, or a kernel whose blkio does not count it). Never the host's counters: they count
 * since boot, the container's uptime since its start, and iostat divides one by the other.
 * Counters the cgroup does not keep (in flight, queue time, flushes) are 0.
 */
export function renderDiskstats(io: IoSnapshot, hostDisks: readonly HostDisk[]): string {
  let text = "";
  for (const disk of hostDisks) {
    const stats = io.get(`${disk.major}:${disk.minor}`) ?? emptyDeviceIo();
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
    const columns = counters.slice(0, disk.columns);
    while (columns.length < disk.columns) columns.push(0);
    text += `${String(disk.major).padStart(4)} ${String(disk.minor).padStart(7)} ${disk.name} ${columns.join(" ")}\n`;
  }
  return text;
}

/**
 * The host's /proc/diskstats: which block devices exist, their names and how many columns
 * this kernel prints. The host's counters themselves are never shown (render/diskstats.ts).
 */

export interface HostDisk {
  major: number;
  minor: number;
  name: string;
  /** How many counters the host prints for the device: 11, 15 or 17 depending on the kernel. */
  columns: number;
}

const deviceLine = /^\s*(\d+)\s+(\d+)\s+(\S+)((?:\s+\d+){11,})\s*$/;

export function parseHostDiskstats(text: string): HostDisk[] {
  const disks: HostDisk[] = [];
  for (const line of text.split("\n")) {
    const match = deviceLine.exec(line);
    if (match === null) continue;
    disks.push({ major: Number(match[1]), minor: Number(match[2]), name: match[3], columns: match[4].trim().split(/\s+/).length });
  }
  return disks;
}

/** The host's /proc/diskstats: which block devices exist, their names and how many columns this kernel prints. */

export interface HostDisk {
  major: number;
  minor: number;
  name: string;
  /** The host's counters (11, 15 or 17 of them depending on the kernel). */
  counters: readonly number[];
}

export function parseHostDiskstats(text: string): HostDisk[] {
  const disks: HostDisk[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 14) continue;
    const [major, minor, name, ...counters] = fields;
    if (!/^\d+$/.test(major) || !/^\d+$/.test(minor)) continue;
    disks.push({ major: Number(major), minor: Number(minor), name, counters: counters.map(Number) });
  }
  return disks;
}

/** The kernel's CPU list format ("0-3,8,10-11"), used by cpuset files and /sys/devices/system/cpu/online. */

/** Sorted, de-duplicated CPU numbers; throws on malformed text. An empty list is valid (""). */
export function parseCpuList(text: string): number[] {
  const cpus = new Set<number>();
  const trimmed = text.trim();
  if (trimmed === "") return [];
  for (const part of trimmed.split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!match) throw new Error(`malformed CPU list: ${JSON.stringify(trimmed.slice(0, 80))}`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    // A bound keeps a corrupt range from allocating billions of entries.
    if (last < first || last > 65535) throw new Error(`malformed CPU range: ${JSON.stringify(part)}`);
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** Ranges for consecutive runs, as the kernel prints them. */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** The host's /proc/stat: per-CPU tick counters and the other lines in the kernel's order. */

/** user nice system idle iowait irq softirq steal guest guest_nice, in USER_HZ ticks. */
export type CpuTicks = readonly number[];

export interface HostStat {
  /** Host CPU number → its counters (the aggregate "cpu" line is not kept: views recompute it). */
  cpus: ReadonlyMap<number, CpuTicks>;
  /** Every line that is not a cpu line (intr, ctxt, btime, processes, procs_running, …), in order, without newline. */
  otherLines: readonly string[];
}

export function parseHostStat(text: string): HostStat {
  const cpus = new Map<number, CpuTicks>();
  const otherLines: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const match = /^cpu(\d*)\s+(.*)$/.exec(line);
    if (!match) {
      otherLines.push(line);
      continue;
    }
    if (match[1] === "") continue;
    const ticks = match[2].trim().split(/\s+/).map(Number);
    // Older kernels print fewer columns; missing ones are zero.
    while (ticks.length < 10) ticks.push(0);
    if (ticks.some((value) => !Number.isFinite(value))) throw new Error(`malformed /proc/stat line: ${JSON.stringify(line.slice(0, 80))}`);
    cpus.set(Number(match[1]), ticks.slice(0, 10));
  }
  if (cpus.size === 0) throw new Error("host /proc/stat has no per-CPU lines");
  return { cpus, otherLines };
}

/**
 * Ticks a CPU existed for, by the host's account. guest and guest_nice are already
 * counted in user and nice, so they are not added again.
 */
export function elapsedTicks(ticks: CpuTicks): number {
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += ticks[i];
  return sum;
}

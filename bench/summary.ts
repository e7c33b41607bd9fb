/**
 * The arithmetic and the table of the meminfo benchmark, kept apart from processes and
 * mounts so they can be checked with made-up figures.
 */

/** One reader's timed run of one batch, on the monotonic clock shared by all processes. */
export interface ReaderSpan {
  startNs: bigint;
  endNs: bigint;
  reads: number;
}

/** One batch of concurrent readers on one target: wall time from the first start to the last end. */
export function batchWallNs(spans: readonly ReaderSpan[]): bigint {
  if (spans.length === 0) throw new Error("a batch needs at least one reader span");
  let start = spans[0].startNs;
  let end = spans[0].endNs;
  for (const span of spans) {
    if (span.startNs < start) start = span.startNs;
    if (span.endNs > end) end = span.endNs;
  }
  return end - start;
}

/**
 * Whether every reader was running at one common moment (the last start came before the
 * first end): evidence that the readers were concurrent, not served one after another.
 */
export function readersOverlapped(spans: readonly ReaderSpan[]): boolean {
  if (spans.length === 0) return false;
  const lastStart = spans.reduce((latest, span) => (span.startNs > latest ? span.startNs : latest), spans[0].startNs);
  const firstEnd = spans.reduce((earliest, span) => (span.endNs < earliest ? span.endNs : earliest), spans[0].endNs);
  return lastStart < firstEnd;
}

/** One target's batch in one round: reads by all readers together, and the batch's wall time. */
export interface RoundResult {
  reads: number;
  wallNs: bigint;
}

/** What one target got over all rounds of one reader count. */
export interface TargetResult {
  target: string;
  rounds: RoundResult[];
  /** CPU the serving daemon spent (user + system), when the target has a daemon. */
  daemonCpuNs?: bigint;
}

export function readsPerSecond(result: TargetResult): number {
  return rate(result.target, result.rounds);
}

function rate(target: string, rounds: readonly RoundResult[]): number {
  const reads = rounds.reduce((sum, round) => sum + round.reads, 0);
  const wallNs = rounds.reduce((sum, round) => sum + round.wallNs, 0n);
  if (wallNs <= 0n) throw new Error(`no time measured for ${target}`);
  return (reads * 1e9) / Number(wallNs);
}

/**
 * The target's rate over the reference's in each round. Rounds run back to back, so a
 * load spike from outside hits both sides of a round alike; the median of these pairs
 * is steadier than the ratio of totals on a busy machine.
 */
export function roundRatios(result: TargetResult, reference: TargetResult): number[] {
  if (result.rounds.length !== reference.rounds.length) {
    throw new Error(`${result.target} has ${result.rounds.length} rounds, ${reference.target} ${reference.rounds.length}`);
  }
  return result.rounds.map((round, index) => rate(result.target, [round]) / rate(reference.target, [reference.rounds[index]]));
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("no values to take the median of");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * A fixed-width table: reads/s over all rounds, its ratio to `referenceTarget`, the
 * median (lowest-highest) of the per-round ratios, the daemon's CPU per read and reads per
 * CPU-second of the daemon.
 */
export function formatThroughputTable(results: readonly TargetResult[], referenceTarget: string): string {
  const reference = results.find((result) => result.target === referenceTarget);
  if (reference === undefined) throw new Error(`reference target ${referenceTarget} is not among the results`);
  const referenceRate = readsPerSecond(reference);
  const header = ["target", "reads/s", `vs ${referenceTarget}`, "per round: median (range)", "daemon CPU/read", "reads/daemon CPU-s"];
  const lines = results.map((result) => {
    const reads = result.rounds.reduce((sum, round) => sum + round.reads, 0);
    const ratios = roundRatios(result, reference);
    const cpuPerRead = result.daemonCpuNs === undefined ? "-" : `${Math.round(Number(result.daemonCpuNs) / reads / 1000)} us`;
    // What one serving thread kept busy gets through: the figure that scales with cores.
    const perCpuSecond = result.daemonCpuNs === undefined || result.daemonCpuNs === 0n ? "-" : Math.round((reads * 1e9) / Number(result.daemonCpuNs)).toLocaleString("en-US");
    return [
      result.target,
      Math.round(readsPerSecond(result)).toLocaleString("en-US"),
      `${(readsPerSecond(result) / referenceRate).toFixed(2)}x`,
      `${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
      cpuPerRead,
      perCpuSecond,
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ");
  return [format(header), ...lines.map(format)].join("\n");
}

/** The batch sizes that split `total` reads over `parts` as evenly as whole numbers allow. */
export function splitEvenly(total: number, parts: number): number[] {
  if (!Number.isSafeInteger(total) || total < 0 || !Number.isSafeInteger(parts) || parts < 1) {
    throw new Error(`cannot split ${total} reads into ${parts} parts`);
  }
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, index) => base + (index < total % parts ? 1 : 0));
}

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

/** What one target accumulated over all rounds of one reader count. */
export interface TargetTotals {
  target: string;
  reads: number;
  wallNs: bigint;
  /** CPU the serving daemon spent (user + system), when the target has a daemon. */
  daemonCpuNs?: bigint;
}

export function readsPerSecond(totals: TargetTotals): number {
  if (totals.wallNs <= 0n) throw new Error(`no time measured for ${totals.target}`);
  return (totals.reads * 1e9) / Number(totals.wallNs);
}

/** A fixed-width table: reads/s, the ratio to `referenceTarget`, and daemon CPU per read. */
export function formatThroughputTable(rows: readonly TargetTotals[], referenceTarget: string): string {
  const reference = rows.find((row) => row.target === referenceTarget);
  if (reference === undefined) throw new Error(`reference target ${referenceTarget} is not among the results`);
  const referenceRate = readsPerSecond(reference);
  const header = ["target", "reads/s", `vs ${referenceTarget}`, "daemon CPU/read"];
  const lines = rows.map((row) => {
    const rate = readsPerSecond(row);
    const cpuPerRead = row.daemonCpuNs === undefined ? "-" : `${Math.round(Number(row.daemonCpuNs) / row.reads / 1000)} us`;
    return [row.target, Math.round(rate).toLocaleString("en-US"), `${(rate / referenceRate).toFixed(2)}x`, cpuPerRead];
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

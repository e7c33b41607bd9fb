/**
 * The table of the procview-runc benchmark: per operation, the latency of the baseline
 * (runc) and of the measured runtime (procview-runc), and what the latter adds. Pure, so
 * it is checked with made-up figures.
 */

import { median } from "./summary.ts";

/** One operation's call latencies in ms; measured[i] ran right after baseline[i]. */
export interface LatencyRow {
  operation: string;
  baseline: readonly number[];
  measured: readonly number[];
  /** CPU (user + system) of each call in ms: steadier than wall time on a busy machine. */
  baselineCpu: readonly number[];
  measuredCpu: readonly number[];
}

/** The value below which 90% of the latencies lie (nearest rank). */
export function percentile90(values: readonly number[]): number {
  if (values.length === 0) throw new Error("no values to take a percentile of");
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length * 0.9) - 1];
}

/**
 * What the measured runtime adds: the median of the pairwise differences. A pair ran
 * back to back, so load from outside hits both calls of a pair alike.
 */
export function addedMs(row: LatencyRow): number {
  if (row.baseline.length !== row.measured.length) throw new Error(`${row.operation}: ${row.baseline.length} baseline calls, ${row.measured.length} measured`);
  return median(row.measured.map((ms, index) => ms - row.baseline[index]));
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new Error("no values to average");
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

export function formatLatencyTable(rows: readonly LatencyRow[], baselineName: string, measuredName: string): string {
  const header = ["operation", `${baselineName}: median (p90)`, `${measuredName}: median (p90)`, "added (median of pairs)", "CPU per call (mean)"];
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const lines = rows.map((row) => [
    row.operation,
    `${ms(median(row.baseline))} (${ms(percentile90(row.baseline))})`,
    `${ms(median(row.measured))} (${ms(percentile90(row.measured))})`,
    `${addedMs(row) >= 0 ? "+" : ""}${ms(addedMs(row))}`,
    `${ms(mean(row.baselineCpu))} -> ${ms(mean(row.measuredCpu))}`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ");
  return [format(header), ...lines.map(format)].join("\n");
}

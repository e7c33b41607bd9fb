/**
 * Counts of view reads and their render times, kept in shared memory: views are rendered
 * in the FUSE worker threads, and /metrics is answered by the main thread. Each worker
 * adds to the same counters with Atomics (a few adds per open, no messages, no locks);
 * the main thread reads a snapshot at scrape time and prints Prometheus text.
 */

export type ViewLayout = "containers" | "lxcfs";

const layouts: readonly ViewLayout[] = ["containers", "lxcfs"];

/** Upper bounds (seconds) of procview_view_render_seconds: a render takes tens of µs to a few ms. */
export const renderSecondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1] as const;

/** Per (view, layout): reads, failed reads, render time sum in ns, then one count per bucket. */
const slotSize = 3 + renderSecondsBuckets.length;

/** Structured-clonable: handed to every worker in the tree options; the buffer is shared. */
export interface ViewStats {
  views: string[];
  buffer: SharedArrayBuffer;
}

export function createViewStats(views: readonly string[]): ViewStats {
  return { views: [...views], buffer: new SharedArrayBuffer(views.length * layouts.length * slotSize * 8) };
}

function slotOf(stats: ViewStats, view: string, layout: ViewLayout): number {
  const viewIndex = stats.views.indexOf(view);
  if (viewIndex < 0) throw new Error(`view stats: unknown view ${view}`);
  return (viewIndex * layouts.length + layouts.indexOf(layout)) * slotSize;
}

/** Adds one read of `view`; `seconds` is its render time, `failed` when it answered an error. */
export function recordViewRead(stats: ViewStats, view: string, layout: ViewLayout, seconds: number, failed: boolean): void {
  const counters = new BigInt64Array(stats.buffer);
  const slot = slotOf(stats, view, layout);
  Atomics.add(counters, slot, 1n);
  if (failed) Atomics.add(counters, slot + 1, 1n);
  Atomics.add(counters, slot + 2, BigInt(Math.round(seconds * 1e9)));
  const bucket = renderSecondsBuckets.findIndex((bound) => seconds <= bound);
  if (bucket >= 0) Atomics.add(counters, slot + 3 + bucket, 1n);
}

export interface ViewReadCounts {
  view: string;
  layout: ViewLayout;
  reads: number;
  failed: number;
  sumSeconds: number;
  /** Cumulative counts, one per bucket of renderSecondsBuckets (Prometheus `le`). */
  cumulative: number[];
}

export function snapshotViewStats(stats: ViewStats): ViewReadCounts[] {
  const counters = new BigInt64Array(stats.buffer);
  const snapshot: ViewReadCounts[] = [];
  for (const view of stats.views) {
    for (const layout of layouts) {
      const slot = slotOf(stats, view, layout);
      let running = 0;
      const cumulative = renderSecondsBuckets.map((_, i) => (running += Number(Atomics.load(counters, slot + 3 + i))));
      snapshot.push({
        view,
        layout,
        reads: Number(Atomics.load(counters, slot)),
        failed: Number(Atomics.load(counters, slot + 1)),
        sumSeconds: Number(Atomics.load(counters, slot + 2)) / 1e9,
        cumulative,
      });
    }
  }
  return snapshot;
}

/** Prometheus text of procview_view_reads_total and procview_view_render_seconds. */
export function renderViewMetrics(snapshot: readonly ViewReadCounts[]): string {
  const label = (c: ViewReadCounts) => `view="${c.view}",layout="${c.layout}"`;
  const lines = [
    "# HELP procview_view_reads_total Opens of a view file (each renders the view once).",
    "# TYPE procview_view_reads_total counter",
    ...snapshot.map((c) => `procview_view_reads_total{${label(c)}} ${c.reads}`),
    "# HELP procview_view_render_seconds Time to render a view at open.",
    "# TYPE procview_view_render_seconds histogram",
  ];
  for (const c of snapshot) {
    renderSecondsBuckets.forEach((bound, i) => lines.push(`procview_view_render_seconds_bucket{${label(c)},le="${bound}"} ${c.cumulative[i]}`));
    lines.push(`procview_view_render_seconds_bucket{${label(c)},le="+Inf"} ${c.reads}`);
    lines.push(`procview_view_render_seconds_sum{${label(c)}} ${c.sumSeconds}`);
    lines.push(`procview_view_render_seconds_count{${label(c)}} ${c.reads}`);
  }
  return lines.join("\n") + "\n";
}

/** Failed renders over every view, for procview_errors_total{kind="view_render"}. */
export function failedViewReads(snapshot: readonly ViewReadCounts[]): number {
  return snapshot.reduce((sum, c) => sum + c.failed, 0);
}

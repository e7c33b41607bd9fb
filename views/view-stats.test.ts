import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { createViewStats, failedViewReads, recordViewRead, renderViewMetrics, snapshotViewStats } from "./view-stats.ts";

test("reads, failures and render times land in their view, layout and bucket", () => {
  const stats = createViewStats(["proc/meminfo", "proc/stat"]);
  recordViewRead(stats, "proc/meminfo", "containers", 0.00005, false);
  recordViewRead(stats, "proc/meminfo", "containers", 0.003, false);
  recordViewRead(stats, "proc/meminfo", "lxcfs", 2, true);
  const snapshot = snapshotViewStats(stats);
  const meminfo = snapshot.find((c) => c.view === "proc/meminfo" && c.layout === "containers")!;
  assert.equal(meminfo.reads, 2);
  assert.equal(meminfo.failed, 0);
  assert.ok(Math.abs(meminfo.sumSeconds - 0.00305) < 1e-9);
  assert.deepEqual(meminfo.cumulative, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
  const slow = snapshot.find((c) => c.view === "proc/meminfo" && c.layout === "lxcfs")!;
  assert.deepEqual(slow.cumulative, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "above the last bound: only +Inf counts it");
  assert.equal(failedViewReads(snapshot), 1);
  assert.throws(() => recordViewRead(stats, "proc/vmstat", "lxcfs", 0, false), /unknown view proc\/vmstat/);
});

test("the Prometheus text: a counter and a histogram per view and layout", () => {
  const stats = createViewStats(["proc/meminfo"]);
  recordViewRead(stats, "proc/meminfo", "lxcfs", 0.0004, false);
  const text = renderViewMetrics(snapshotViewStats(stats));
  assert.match(text, /^# TYPE procview_view_reads_total counter$/m);
  assert.match(text, /^procview_view_reads_total\{view="proc\/meminfo",layout="lxcfs"\} 1$/m);
  assert.match(text, /^procview_view_reads_total\{view="proc\/meminfo",layout="containers"\} 0$/m);
  assert.match(text, /^# TYPE procview_view_render_seconds histogram$/m);
  assert.match(text, /^procview_view_render_seconds_bucket\{view="proc\/meminfo",layout="lxcfs",le="0.00025"\} 0$/m);
  assert.match(text, /^procview_view_render_seconds_bucket\{view="proc\/meminfo",layout="lxcfs",le="0.0005"\} 1$/m);
  assert.match(text, /^procview_view_render_seconds_bucket\{view="proc\/meminfo",layout="lxcfs",le="\+Inf"\} 1$/m);
  assert.match(text, /^procview_view_render_seconds_sum\{view="proc\/meminfo",layout="lxcfs"\} 0.0004$/m);
  assert.match(text, /^procview_view_render_seconds_count\{view="proc\/meminfo",layout="lxcfs"\} 1$/m);
});

test("worker threads add to the same counters through the shared buffer", async () => {
  const stats = createViewStats(["proc/stat"]);
  const source = `
    const { workerData, parentPort } = require("node:worker_threads");
    const counters = new BigInt64Array(workerData.buffer);
    for (let i = 0; i < 1000; i++) Atomics.add(counters, 0, 1n);
    parentPort.postMessage("done");`;
  // The recorder itself in each thread would need the module loader of the runtime under
  // test; the layout it relies on (slot 0 = reads of the first view) is what is shared.
  const workers = [0, 1, 2].map(() => new Worker(source, { eval: true, workerData: stats }));
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once("message", resolve))));
  await Promise.all(workers.map((w) => w.terminate()));
  recordViewRead(stats, "proc/stat", "containers", 0, false);
  assert.equal(snapshotViewStats(stats).find((c) => c.layout === "containers")!.reads, 3001);
});

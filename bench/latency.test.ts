import assert from "node:assert/strict";
import { test } from "node:test";
import { addedMs, formatLatencyTable, mean, percentile90 } from "./latency.ts";

test("p90 is the nearest-rank value below which nine tenths lie", () => {
  assert.equal(percentile90([5, 1, 4, 2, 3, 10, 9, 8, 7, 6]), 9);
  assert.equal(percentile90([7]), 7);
  assert.throws(() => percentile90([]), /no values/);
});

test("the added time is the median of back-to-back pairs, not the difference of medians", () => {
  // A load spike in pair 3 slows both calls of that pair alike.
  const row = { operation: "create", baseline: [10, 11, 50, 12, 10], measured: [40, 41, 80, 45, 39], baselineCpu: [], measuredCpu: [] };
  assert.equal(addedMs(row), 30);
  assert.throws(() => addedMs({ operation: "x", baseline: [1], measured: [], baselineCpu: [], measuredCpu: [] }), /1 baseline calls, 0 measured/);
});

test("the table lists each operation with both latencies and the difference", () => {
  const table = formatLatencyTable(
    [
      { operation: "pass-through", baseline: [4, 4, 5], measured: [40, 42, 41], baselineCpu: [0, 10, 0], measuredCpu: [30, 40, 35] },
      { operation: "delete", baseline: [100, 101, 102], measured: [99, 100, 101], baselineCpu: [10, 10, 10], measuredCpu: [40, 40, 40] },
    ],
    "runc",
    "procview-runc",
  );
  const lines = table.split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^operation\s+runc: median \(p90\)\s+procview-runc: median \(p90\)\s+added \(median of pairs\)\s+CPU per call \(mean\)$/);
  assert.match(lines[1], /^pass-through\s+4\.0 ms \(5\.0 ms\)\s+41\.0 ms \(42\.0 ms\)\s+\+36\.0 ms\s+3\.3 ms -> 35\.0 ms$/);
  assert.match(lines[2], /-1\.0 ms\s+10\.0 ms -> 40\.0 ms$/);
  assert.throws(() => mean([]), /no values/);
});

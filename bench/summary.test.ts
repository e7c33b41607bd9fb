import assert from "node:assert/strict";
import { test } from "node:test";
import { batchWallNs, formatThroughputTable, readersOverlapped, readsPerSecond, splitEvenly } from "./summary.ts";

test("a batch lasts from its first reader's start to its last reader's end", () => {
  const spans = [
    { startNs: 100n, endNs: 900n, reads: 10 },
    { startNs: 50n, endNs: 400n, reads: 10 },
    { startNs: 300n, endNs: 1_000n, reads: 10 },
  ];
  assert.equal(batchWallNs(spans), 950n);
  assert.throws(() => batchWallNs([]), /at least one reader/);
});

test("readers overlapped only when the last start precedes the first end", () => {
  assert.equal(readersOverlapped([{ startNs: 0n, endNs: 100n, reads: 1 }, { startNs: 99n, endNs: 200n, reads: 1 }]), true);
  // One after the other, as a serialized filesystem would make them.
  assert.equal(readersOverlapped([{ startNs: 0n, endNs: 100n, reads: 1 }, { startNs: 100n, endNs: 200n, reads: 1 }]), false);
  assert.equal(readersOverlapped([]), false);
});

test("reads per second from reads and wall time", () => {
  assert.equal(readsPerSecond({ target: "x", reads: 5_000, wallNs: 2_000_000_000n }), 2_500);
  assert.throws(() => readsPerSecond({ target: "x", reads: 1, wallNs: 0n }), /no time measured for x/);
});

test("the table gives each target's rate, its ratio to the reference and its daemon's CPU per read", () => {
  const table = formatThroughputTable(
    [
      { target: "procfs", reads: 20_000, wallNs: 100_000_000n },
      { target: "lxcfs", reads: 20_000, wallNs: 4_000_000_000n, daemonCpuNs: 2_000_000_000n },
      { target: "procview", reads: 20_000, wallNs: 2_000_000_000n, daemonCpuNs: 3_000_000_000n },
    ],
    "lxcfs",
  );
  const lines = table.split("\n").map((line) => line.trim().split(/\s{2,}/));
  assert.deepEqual(lines, [
    ["target", "reads/s", "vs lxcfs", "daemon CPU/read"],
    ["procfs", "200,000", "40.00x", "-"],
    ["lxcfs", "5,000", "1.00x", "100 us"],
    ["procview", "10,000", "2.00x", "150 us"],
  ]);
  assert.throws(() => formatThroughputTable([{ target: "procfs", reads: 1, wallNs: 1n }], "lxcfs"), /reference target lxcfs/);
});

test("reads split over batches as evenly as whole numbers allow", () => {
  assert.deepEqual(splitEvenly(20_000, 8), Array(8).fill(2_500));
  assert.deepEqual(splitEvenly(10, 4), [3, 3, 2, 2]);
  assert.throws(() => splitEvenly(10, 0), /cannot split/);
  assert.throws(() => splitEvenly(1.5, 2), /cannot split/);
});

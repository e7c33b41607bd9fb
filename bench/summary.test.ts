import assert from "node:assert/strict";
import { test } from "node:test";
import { batchWallNs, formatThroughputTable, median, readersOverlapped, readsPerSecond, roundRatios, splitEvenly } from "./summary.ts";

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

test("reads per second over all rounds", () => {
  const rounds = [
    { reads: 2_000, wallNs: 1_000_000_000n },
    { reads: 3_000, wallNs: 1_000_000_000n },
  ];
  assert.equal(readsPerSecond({ target: "x", rounds }), 2_500);
  assert.throws(() => readsPerSecond({ target: "x", rounds: [{ reads: 1, wallNs: 0n }] }), /no time measured for x/);
});

test("per-round ratios pair each round with the reference's same round", () => {
  const reference = { target: "lxcfs", rounds: [{ reads: 100, wallNs: 100n }, { reads: 100, wallNs: 400n }] };
  // Round 2 was slow for both (load from outside): the pair still says 2x.
  const faster = { target: "procview", rounds: [{ reads: 100, wallNs: 50n }, { reads: 100, wallNs: 200n }] };
  assert.deepEqual(roundRatios(faster, reference), [2, 2]);
  assert.throws(() => roundRatios({ target: "procview", rounds: [] }, reference), /procview has 0 rounds, lxcfs 2/);
});

test("median of odd and even counts", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), /no values/);
});

test("the table gives each target's rate, its ratio to the reference, the per-round spread and its daemon's CPU per read", () => {
  const round = (reads: number, ms: number) => ({ reads, wallNs: BigInt(ms) * 1_000_000n });
  const table = formatThroughputTable(
    [
      { target: "procfs", rounds: [round(10_000, 50), round(10_000, 50)] },
      { target: "lxcfs", rounds: [round(10_000, 2_000), round(10_000, 2_000)], daemonCpuNs: 2_000_000_000n },
      { target: "procview", rounds: [round(10_000, 500), round(10_000, 1_500)], daemonCpuNs: 3_000_000_000n },
    ],
    "lxcfs",
  );
  const lines = table.split("\n").map((line) => line.trim().split(/\s{2,}/));
  assert.deepEqual(lines, [
    ["target", "reads/s", "vs lxcfs", "per round: median (range)", "daemon CPU/read", "reads/daemon CPU-s"],
    ["procfs", "200,000", "40.00x", "40.00x (40.00-40.00)", "-", "-"],
    ["lxcfs", "5,000", "1.00x", "1.00x (1.00-1.00)", "100 us", "10,000"],
    ["procview", "10,000", "2.00x", "2.67x (1.33-4.00)", "150 us", "6,667"],
  ]);
  assert.throws(() => formatThroughputTable([{ target: "procfs", rounds: [round(1, 1)] }], "lxcfs"), /reference target lxcfs/);
});

test("reads split over batches as evenly as whole numbers allow", () => {
  assert.deepEqual(splitEvenly(20_000, 8), Array(8).fill(2_500));
  assert.deepEqual(splitEvenly(10, 4), [3, 3, 2, 2]);
  assert.throws(() => splitEvenly(10, 0), /cannot split/);
  assert.throws(() => splitEvenly(1.5, 2), /cannot split/);
});

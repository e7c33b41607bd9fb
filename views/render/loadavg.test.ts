import { test } from "node:test";
import assert from "node:assert/strict";
import { calcLoad, nextLoadAverages, renderLoadavg, type LoadAverages } from "./loadavg.ts";

const tasks = { running: 1, blocked: 0, total: 3, lastPid: 42 };
const first = (active: number) => nextLoadAverages([0, 0, 0], active);

test("the kernel's fixed-point step: one runnable thread from idle gives 0.08 after one sample", () => {
  assert.equal(calcLoad(0, 1884, 1), 164);
  assert.equal(renderLoadavg(first(1), tasks), "0.08 0.02 0.01 1/3 42\n");
});

test("a steady load converges exactly, and decays back to zero", () => {
  let averages: LoadAverages = [0, 0, 0];
  for (let i = 0; i < 2000; i++) averages = nextLoadAverages(averages, 2);
  assert.equal(renderLoadavg(averages, tasks), "2.00 2.00 2.00 1/3 42\n");
  for (let i = 0; i < 2000; i++) averages = nextLoadAverages(averages, 0);
  assert.equal(renderLoadavg(averages, tasks), "0.00 0.00 0.00 1/3 42\n");
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { calcLoad, LoadAverageTracker, nextLoadAverages, renderLoadavg, type LoadAverages } from "./loadavg.ts";

const tasks = { running: 1, blocked: 0, total: 3, lastPid: 42 };

test("the kernel's fixed-point step: one runnable thread from idle gives 0.08 after one sample", () => {
  assert.equal(calcLoad(0, 1884, 1), 164);
  assert.equal(renderLoadavg(nextLoadAverages([0, 0, 0], 1), tasks), "0.08 0.02 0.01 1/3 42\n");
});

test("a steady load converges exactly, and decays back to zero", () => {
  let averages: LoadAverages = [0, 0, 0];
  for (let i = 0; i < 2000; i++) averages = nextLoadAverages(averages, 2);
  assert.equal(renderLoadavg(averages, tasks), "2.00 2.00 2.00 1/3 42\n");
  for (let i = 0; i < 2000; i++) averages = nextLoadAverages(averages, 0);
  assert.equal(renderLoadavg(averages, tasks), "0.00 0.00 0.00 1/3 42\n");
});

test("the tracker samples every cgroup read recently and forgets the rest", (t) => {
  let now = 0;
  const active = new Map<string, number | undefined>([["/a", 1], ["/b", 3]]);
  const counted: string[] = [];
  const tracker = new LoadAverageTracker((key) => {
    counted.push(key);
    return active.get(key);
  }, { forgetAfterMs: 60_000, now: () => now });
  t.after(() => tracker.stop());

  assert.deepEqual(tracker.averagesOf("/a", 1), nextLoadAverages([0, 0, 0], 1));
  tracker.averagesOf("/b", 3);
  tracker.sample();
  assert.deepEqual(tracker.averagesOf("/a", 1), nextLoadAverages(nextLoadAverages([0, 0, 0], 1), 1));
  assert.deepEqual(counted, ["/a", "/b"]);

  now = 50_000;
  tracker.averagesOf("/a", 1);
  now = 70_000;
  counted.length = 0;
  tracker.sample();
  assert.deepEqual(counted, ["/a"], "/b was not read for longer than forgetAfterMs");
  assert.deepEqual(tracker.averagesOf("/b", 3), nextLoadAverages([0, 0, 0], 3), "a forgotten cgroup starts over");
});

test("a cgroup that is gone, or whose count fails, is dropped without disturbing the others", (t) => {
  const tracker = new LoadAverageTracker((key) => {
    if (key === "/broken") throw new Error("EIO");
    return key === "/gone" ? undefined : 1;
  });
  t.after(() => tracker.stop());
  tracker.averagesOf("/gone", 1);
  tracker.averagesOf("/broken", 1);
  const first = tracker.averagesOf("/ok", 1);
  tracker.sample();
  assert.notDeepEqual(tracker.averagesOf("/ok", 1), first);
  assert.deepEqual(tracker.averagesOf("/gone", 5), nextLoadAverages([0, 0, 0], 5), "re-registered from scratch");
});

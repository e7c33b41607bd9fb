import { test } from "node:test";
import assert from "node:assert/strict";
import { calcLoad, createLoadAverageMemory, LoadAverageTracker, nextLoadAverages, renderLoadavg, type LoadAverages } from "./loadavg.ts";

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

/** A clock in 5-second sampling intervals. */
function clock() {
  let ms = 1_000_000_000;
  return { now: () => ms, advance: (intervals: number) => (ms += intervals * 5000) };
}

test("the tracker samples every cgroup read recently, once per interval, and forgets the rest", (t) => {
  const time = clock();
  const active = new Map<string, number | undefined>([["/a", 1], ["/b", 3]]);
  const counted: string[] = [];
  const tracker = new LoadAverageTracker(createLoadAverageMemory(), (key) => {
    counted.push(key);
    return active.get(key);
  }, { forgetAfterMs: 60_000, now: time.now });
  t.after(() => tracker.stop());

  assert.deepEqual(tracker.averagesOf("/a", 1), first(1));
  tracker.averagesOf("/b", 3);
  tracker.sample();
  assert.deepEqual(counted, [], "nothing to do within the interval of the first read");
  time.advance(1);
  tracker.sample();
  tracker.sample();
  assert.deepEqual(counted, ["/a", "/b"], "one sample per interval");
  assert.deepEqual(tracker.averagesOf("/a", 1), nextLoadAverages(first(1), 1));

  time.advance(10);
  tracker.averagesOf("/a", 1);
  time.advance(4);
  counted.length = 0;
  tracker.sample();
  assert.deepEqual(counted, ["/a"], "/b was not read for longer than forgetAfterMs");
  assert.deepEqual(tracker.averagesOf("/b", 3), first(3), "a forgotten cgroup starts over");
});

test("intervals nobody sampled are caught up with the count seen now", (t) => {
  const time = clock();
  const tracker = new LoadAverageTracker(createLoadAverageMemory(), () => 2, { now: time.now });
  t.after(() => tracker.stop());
  tracker.averagesOf("/a", 2);
  time.advance(3);
  tracker.sample();
  assert.deepEqual(tracker.averagesOf("/a", 2), nextLoadAverages(nextLoadAverages(nextLoadAverages(first(2), 2), 2), 2));
});

test("worker threads sharing the memory show the same averages, decayed once per interval", (t) => {
  const time = clock();
  const memory = createLoadAverageMemory();
  let counts = 0;
  const count = () => (counts++, 1);
  const workerA = new LoadAverageTracker(memory, count, { now: time.now });
  const workerB = new LoadAverageTracker(memory, count, { now: time.now });
  t.after(() => workerA.stop());
  t.after(() => workerB.stop());

  const seenByA = workerA.averagesOf("/pod/ctr", 1);
  assert.deepEqual(workerB.averagesOf("/pod/ctr", 1), seenByA, "B finds A's entry instead of starting at 0");
  time.advance(1);
  workerA.sample();
  workerB.sample();
  assert.equal(counts, 1, "one of the two sampled");
  assert.deepEqual(workerB.averagesOf("/pod/ctr", 1), nextLoadAverages(seenByA, 1));

  // A cgroup only A has read is still sampled, and B sees the result when it first reads it.
  workerA.averagesOf("/other", 1);
  time.advance(1);
  workerA.sample();
  assert.deepEqual(workerB.averagesOf("/other", 1), nextLoadAverages(first(1), 1));
});

test("a cgroup that is gone, or whose count fails, is dropped without disturbing the others", (t) => {
  const time = clock();
  const tracker = new LoadAverageTracker(createLoadAverageMemory(), (key) => {
    if (key === "/broken") throw new Error("EIO");
    return key === "/gone" ? undefined : 1;
  }, { now: time.now });
  t.after(() => tracker.stop());
  tracker.averagesOf("/gone", 1);
  tracker.averagesOf("/broken", 1);
  tracker.averagesOf("/ok", 1);
  time.advance(1);
  tracker.sample();
  assert.deepEqual(tracker.averagesOf("/ok", 1), nextLoadAverages(first(1), 1));
  assert.deepEqual(tracker.averagesOf("/gone", 5), first(5), "re-registered from scratch");
  assert.deepEqual(tracker.averagesOf("/broken", 5), first(5), "re-registered from scratch");
});

test("a full table still answers, untracked", (t) => {
  const tracker = new LoadAverageTracker(createLoadAverageMemory(1), () => 1);
  t.after(() => tracker.stop());
  tracker.averagesOf("/a", 1);
  assert.deepEqual(tracker.averagesOf("/b", 4), first(4));
  assert.deepEqual(tracker.averagesOf("/c", 4), first(4));
  assert.throws(() => new LoadAverageTracker(new SharedArrayBuffer(4), () => 1), /no slot/);
});

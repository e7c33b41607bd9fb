import { test } from "node:test";
import assert from "node:assert/strict";
import { createLoadAverageMemory, LoadAverageTable, maxKeyBytes, startLoadAverageSampler } from "./loadavg-sampler.ts";
import { nextLoadAverages, type LoadAverages } from "./render/loadavg.ts";

const first = (active: number) => nextLoadAverages([0, 0, 0], active);

/** A clock in 5-second sampling intervals. */
function clock() {
  let ms = 1_000_000_000;
  return { now: () => ms, advance: (intervals: number) => (ms += intervals * 5000) };
}

const idle: LoadAverages = [0, 0, 0];
const tasksWith = (active: number) => ({ running: active, blocked: 0, total: active + 1, lastPid: 7 });

/** A sampling round over cgroups with fixed active counts (undefined: gone), recording what it counted. */
function round(active: Map<string, number | undefined>, counted: string[] = [], recordedKeys: string[] = []) {
  return {
    countTasks: (key: string) => {
      counted.push(key);
      const count = active.get(key);
      return count === undefined ? undefined : tasksWith(count);
    },
    recordedKeys,
  };
}

test("a cgroup starts idle at its first read and is stepped once per interval by the sampler", () => {
  const time = clock();
  const table = new LoadAverageTable(createLoadAverageMemory(), { now: time.now });
  assert.equal(table.lookup("/a"), undefined);
  assert.equal(table.track("/a", tasksWith(1)), true);
  assert.deepEqual(table.lookup("/a"), { averages: idle, tasks: tasksWith(1) });
  const counted: string[] = [];
  const active = new Map([["/a", 1]]);
  table.sample(round(active, counted));
  assert.deepEqual(counted, [], "nothing to do within the interval of the first read");
  time.advance(1);
  table.sample(round(active, counted));
  table.sample(round(active, counted));
  assert.deepEqual(counted, ["/a"], "one sample per interval");
  assert.deepEqual(table.lookup("/a")?.averages, first(1));
  active.set("/a", 4);
  time.advance(1);
  table.sample(round(active));
  assert.deepEqual(table.lookup("/a"), { averages: nextLoadAverages(first(1), 4), tasks: tasksWith(4) }, "tasks as last sampled");
});

test("intervals nobody sampled are caught up with the count seen now", () => {
  const time = clock();
  const table = new LoadAverageTable(createLoadAverageMemory(), { now: time.now });
  table.track("/a", tasksWith(2));
  time.advance(3);
  table.sample(round(new Map([["/a", 2]])));
  assert.deepEqual(table.lookup("/a")?.averages, nextLoadAverages(nextLoadAverages(first(2), 2), 2));
});

test("recorded cgroups are tracked before any read; unread ones are forgotten, recorded ones kept", () => {
  const time = clock();
  const table = new LoadAverageTable(createLoadAverageMemory(), { now: time.now, forgetAfterMs: 60_000 });
  const active = new Map<string, number | undefined>([["/read", 1], ["/recorded", 2], ["/recorded-gone", undefined]]);
  table.track("/read", tasksWith(1));
  table.sample(round(active, [], ["/recorded", "/recorded-gone"]));
  assert.deepEqual(table.trackedKeys().sort(), ["/read", "/recorded"]);
  time.advance(13);
  table.sample(round(active, [], ["/recorded"]));
  assert.deepEqual(table.trackedKeys(), ["/recorded"], "/read was not read for longer than forgetAfterMs");
  let expected = idle;
  for (let step = 0; step < 13; step++) expected = nextLoadAverages(expected, 2);
  assert.deepEqual(table.lookup("/recorded")?.averages, expected, "stepped from idle since it was recorded");
});

test("a cgroup that is gone is dropped without disturbing the others, and starts over if it comes back", () => {
  const time = clock();
  const table = new LoadAverageTable(createLoadAverageMemory(), { now: time.now });
  table.track("/gone", tasksWith(1));
  table.track("/ok", tasksWith(1));
  time.advance(1);
  table.sample(round(new Map([["/ok", 1]])));
  assert.deepEqual(table.lookup("/ok")?.averages, first(1));
  assert.equal(table.lookup("/gone"), undefined);
  assert.equal(table.track("/gone", tasksWith(5)), true);
  assert.deepEqual(table.lookup("/gone")?.averages, idle);
});

test("threads sharing the memory share the entries; a duplicate from a race is dropped", () => {
  const time = clock();
  const memory = createLoadAverageMemory();
  const workerA = new LoadAverageTable(memory, { now: time.now });
  const workerB = new LoadAverageTable(memory, { now: time.now });
  const sampler = new LoadAverageTable(memory, { now: time.now });
  workerA.track("/pod/ctr", tasksWith(1));
  assert.deepEqual(workerB.lookup("/pod/ctr"), workerA.lookup("/pod/ctr"));
  // Both workers missed each other's entry (the race track() leaves open): two slots, one key.
  workerB.track("/pod/ctr", tasksWith(1));
  time.advance(1);
  sampler.sample(round(new Map([["/pod/ctr", 1]])));
  assert.deepEqual(sampler.trackedKeys(), ["/pod/ctr"]);
  assert.deepEqual(workerB.lookup("/pod/ctr")?.averages, first(1));
});

test("a full table or a key too long to store answers false (the read stays untracked)", () => {
  const table = new LoadAverageTable(createLoadAverageMemory(1));
  assert.equal(table.track("/a", tasksWith(1)), true);
  assert.equal(table.track("/b", tasksWith(1)), false);
  assert.equal(new LoadAverageTable(createLoadAverageMemory()).track("/" + "x".repeat(maxKeyBytes), tasksWith(1)), false);
  assert.throws(() => new LoadAverageTable(new SharedArrayBuffer(4)), /no slot/);
});

test("the sampler runs a round at start and after each boundary, reports a failing round, and stops", async () => {
  const table = new LoadAverageTable(createLoadAverageMemory());
  const errors: unknown[] = [];
  let rounds = 0;
  const sampler = startLoadAverageSampler(table, () => {
    rounds++;
    throw new Error("registry unreadable");
  }, (err) => errors.push(err));
  sampler.stop();
  assert.equal(rounds, 1);
  assert.match(String(errors[0]), /registry unreadable/);
});

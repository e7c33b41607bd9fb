import assert from "node:assert/strict";
import { test } from "node:test";
import { SnapshotCache } from "./snapshot-cache.ts";

/** A clock the test moves; `gather` advances it by its cost, as a walk of many files would take time. */
function fixture(options: { costMultiple?: number; minValidMs?: number; maxValidMs?: number; maxEntries?: number } = {}) {
  let now = 1000;
  const cache = new SnapshotCache<number>({ costMultiple: 20, minValidMs: 0, maxValidMs: 1000, maxEntries: 10, ...options, now: () => now });
  let gathered = 0;
  const gather = (costMs: number) => () => {
    now += costMs;
    return ++gathered;
  };
  return { cache, gather, advance: (ms: number) => (now += ms), gatherings: () => gathered };
}

test("a value stays valid for a multiple of the time it took to gather", () => {
  const { cache, gather, advance } = fixture();
  assert.equal(cache.get("a", gather(2)), 1);
  advance(39);
  assert.equal(cache.get("a", gather(2)), 1, "within 20 x 2 ms");
  advance(1);
  assert.equal(cache.get("a", gather(2)), 2, "expired at 40 ms");
});

test("validity is bounded above and below", () => {
  const slow = fixture({ maxValidMs: 500 });
  slow.cache.get("a", slow.gather(100));
  slow.advance(500);
  assert.equal(slow.cache.get("a", slow.gather(1)), 2, "a 100 ms walk is still redone after 500 ms");
  const quick = fixture({ minValidMs: 5 });
  quick.cache.get("a", quick.gather(0));
  quick.advance(4);
  assert.equal(quick.cache.get("a", quick.gather(0)), 1, "kept for the 5 ms floor");
  quick.advance(1);
  assert.equal(quick.cache.get("a", quick.gather(0)), 2);
});

test("fresh gathers again and replaces the value; keys are apart", () => {
  const { cache, gather } = fixture();
  assert.equal(cache.get("a", gather(5)), 1);
  assert.equal(cache.get("b", gather(5)), 2);
  assert.equal(cache.get("a", gather(5), true), 3);
  assert.equal(cache.get("a", gather(5)), 3);
  assert.equal(cache.get("b", gather(5)), 2);
});

test("a failed gathering is not remembered", () => {
  const { cache, gather } = fixture();
  assert.throws(() =>
    cache.get("a", () => {
      throw new Error("cgroup gone");
    }),
  /cgroup gone/);
  assert.equal(cache.size, 0);
  assert.equal(cache.get("a", gather(1)), 1);
});

test("beyond maxEntries the stalest gathering goes", () => {
  const { cache, gather, gatherings } = fixture({ maxEntries: 2 });
  cache.get("a", gather(10));
  cache.get("b", gather(10));
  cache.get("a", gather(10), true);
  cache.get("c", gather(10));
  assert.equal(cache.size, 2);
  const before = gatherings();
  cache.get("a", gather(10));
  assert.equal(gatherings(), before, "a, re-gathered last, stayed");
  cache.get("b", gather(10));
  assert.equal(gatherings(), before + 1, "b was the stalest and went");
});

test("options that cannot work are refused", () => {
  assert.throws(() => new SnapshotCache({ costMultiple: 1, minValidMs: 10, maxValidMs: 5, maxEntries: 1 }), /invalid snapshot cache options/);
  assert.throws(() => new SnapshotCache({ costMultiple: 1, minValidMs: 0, maxValidMs: 5, maxEntries: 0 }), /invalid snapshot cache options/);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { heapCollectionIntervalMs, PeriodicCollection } from "./heap-collection.ts";

/** A collection on a clock the test moves; `collections` counts what it ran. */
function collectionAt(startMs: number) {
  let now = startMs;
  let collections = 0;
  const collection = new PeriodicCollection(() => collections++, () => now);
  const serve = (requests: number): number => {
    let collected = 0;
    for (let i = 0; i < requests; i++) if (collection.afterRequest()) collected++;
    return collected;
  };
  return { serve, advance: (ms: number) => (now += ms), collections: () => collections };
}

test("no collection before the interval has passed, however many requests", () => {
  const clock = collectionAt(1_000);
  assert.equal(clock.serve(100_000), 0);
  clock.advance(heapCollectionIntervalMs - 1);
  assert.equal(clock.serve(10_000), 0);
  assert.equal(clock.collections(), 0);
});

test("once the interval has passed, one collection at the next look at the clock, then a full interval again", () => {
  const clock = collectionAt(0);
  clock.advance(heapCollectionIntervalMs);
  assert.equal(clock.serve(1023), 0, "the clock is looked at every 1,024 requests");
  assert.equal(clock.serve(1), 1);
  assert.equal(clock.serve(50_000), 0);
  clock.advance(heapCollectionIntervalMs);
  assert.equal(clock.serve(1024), 1);
  assert.equal(clock.collections(), 2);
});

test("an idle thread collects nothing: only requests lead to a look at the clock", () => {
  const clock = collectionAt(0);
  clock.advance(10 * heapCollectionIntervalMs);
  assert.equal(clock.collections(), 0);
  assert.equal(clock.serve(1024), 1);
});

test("without the runtime's gc, nothing is collected", () => {
  const collection = new PeriodicCollection(undefined, () => 0);
  for (let i = 0; i < 4096; i++) assert.equal(collection.afterRequest(), false);
});

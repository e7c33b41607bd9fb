import { test } from "node:test";
import assert from "node:assert/strict";
import { KnownSizes } from "./known-sizes.ts";

test("a written store makes its end known; a rejected or unqueued one makes nothing known", () => {
  const sizes = new KnownSizes();
  const store = new Uint8Array(1);
  assert.equal(sizes.needsStore(2, 1), true);
  sizes.queued(store, 2, 100);
  assert.equal(sizes.needsStore(2, 100), true, "not written yet");
  sizes.written(store);
  assert.equal(sizes.needsStore(2, 100), false);
  assert.equal(sizes.needsStore(2, 101), true);
  assert.equal(sizes.needsStore(3, 1), true, "per node");
  sizes.written(new Uint8Array(1));
  sizes.written(store);
  assert.equal(sizes.needsStore(2, 101), true, "reported twice or never queued: nothing more known");
});

test("a shrinking reply lowers what is known, and a store queued before it raises nothing", () => {
  const sizes = new KnownSizes();
  const first = new Uint8Array(1);
  sizes.queued(first, 2, 100);
  sizes.written(first);
  sizes.mayShrink(2, 150);
  assert.equal(sizes.needsStore(2, 100), false, "a size above what is known lowers nothing");
  sizes.mayShrink(2, 40);
  assert.equal(sizes.needsStore(2, 41), true);
  assert.equal(sizes.needsStore(2, 40), false);
  const second = new Uint8Array(1);
  sizes.queued(second, 2, 100);
  sizes.mayShrink(2, 40);
  sizes.written(second);
  assert.equal(sizes.needsStore(2, 41), true, "the shrink may have landed after the store");
  sizes.mayShrink(3, 10);
  const third = new Uint8Array(1);
  sizes.queued(third, 2, 100);
  sizes.written(third);
  assert.equal(sizes.needsStore(2, 100), false, "another node's shrink changes nothing here");
});

test("a forgotten node starts from nothing known", () => {
  const sizes = new KnownSizes();
  const store = new Uint8Array(1);
  sizes.queued(store, 2, 100);
  sizes.written(store);
  sizes.forget(2);
  assert.equal(sizes.needsStore(2, 1), true);
});

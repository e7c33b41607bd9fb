import { test } from "node:test";
import assert from "node:assert/strict";
import { KnownSizes } from "./known-sizes.ts";

/** A store making `end` known for `nodeId`, queued and written. */
function storeWritten(sizes: KnownSizes, nodeId: number, end: number): void {
  const store = new Uint8Array(1);
  sizes.queued(store, nodeId, end);
  sizes.written(store);
}

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
  storeWritten(sizes, 2, 100);
  sizes.attributes(2, 150);
  assert.equal(sizes.needsStore(2, 100), false, "a size above what is known lowers nothing");
  sizes.attributes(2, 40);
  assert.equal(sizes.needsStore(2, 41), true);
  assert.equal(sizes.needsStore(2, 40), false);
  const second = new Uint8Array(1);
  sizes.queued(second, 2, 100);
  sizes.attributes(2, 40);
  sizes.written(second);
  assert.equal(sizes.needsStore(2, 41), true, "the shrink may have landed after the store");
  sizes.attributes(3, 10);
  storeWritten(sizes, 2, 100);
  assert.equal(sizes.needsStore(2, 100), false, "another node's shrink changes nothing here");
});

test("a forgotten node starts from nothing known", () => {
  const sizes = new KnownSizes();
  storeWritten(sizes, 2, 100);
  sizes.forget(2);
  assert.equal(sizes.needsStore(2, 1), true);
});

test("a short READ lowers what is known only where it may be a page read: whole pages within the largest size the kernel was told", () => {
  const sizes = new KnownSizes();
  sizes.created(2);
  storeWritten(sizes, 2, 5000);
  sizes.read(2, 0, 131072, 1200);
  sizes.read(2, 0, 5000, 1200);
  sizes.read(2, 1200, 3800, 0);
  sizes.read(2, 4096, 4096, 904);
  assert.equal(sizes.needsStore(2, 5000), false, "direct reads: past the second page, not whole pages, not from a page boundary, or all asked");
  sizes.read(2, 0, 8192, 1200);
  assert.equal(sizes.needsStore(2, 1201), true, "two pages from 0: a page read may have ended the file");
  assert.equal(sizes.needsStore(2, 1200), false);

  sizes.created(3);
  sizes.attributes(3, 9000);
  storeWritten(sizes, 3, 5000);
  sizes.read(3, 0, 3 * 4096, 100);
  assert.equal(sizes.needsStore(3, 101), true, "three pages: within the 9000 bytes attributes may have set");
});

test("a file the kernel held before this thread served has no known ceiling: every short READ of whole pages may be a page read", () => {
  const sizes = new KnownSizes();
  storeWritten(sizes, 4, 100);
  sizes.read(4, 0, 131072, 80);
  assert.equal(sizes.needsStore(4, 81), true);
  sizes.read(4, 0, 100, 50);
  assert.equal(sizes.needsStore(4, 80), false, "part of a page is still a direct read");
  sizes.created(4);
  sizes.forget(4);
  storeWritten(sizes, 4, 100);
  sizes.read(4, 0, 131072, 80);
  assert.equal(sizes.needsStore(4, 81), true, "forgetting drops the ceiling with the rest");
});

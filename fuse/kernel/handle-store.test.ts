import { test } from "node:test";
import assert from "node:assert/strict";
import { FsError, errno } from "../node.ts";
import { HandleStore, createHandleStoreMemory } from "./handle-store.ts";

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);

test("reads slice the snapshot across chunk boundaries", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 4, chunks: 8, chunkSize: 8 }));
  const content = "0123456789abcdefghijklmnopqrstuvwxyz";
  const handle = store.open(bytes(content));
  assert.ok(handle > 0);
  assert.equal(text(store.read(handle, 0, 1000)), content);
  assert.equal(text(store.read(handle, 5, 10)), content.slice(5, 15));
  assert.equal(text(store.read(handle, 16, 8)), content.slice(16, 24));
  assert.equal(text(store.read(handle, 30, 100)), content.slice(30));
  assert.equal(store.read(handle, 36, 10)?.byteLength, 0, "EOF");
  assert.equal(store.read(handle, 5000, 10)?.byteLength, 0, "past EOF");
});

test("empty content and released handles", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 4, chunks: 4, chunkSize: 8 }));
  const empty = store.open(new Uint8Array(0));
  assert.equal(store.read(empty, 0, 10)?.byteLength, 0);
  assert.equal(store.release(empty), true);
  assert.equal(store.read(empty, 0, 10), undefined);
  assert.equal(store.release(empty), false);
  assert.equal(store.read(0, 0, 1), undefined);
  assert.equal(store.read(123456, 0, 1), undefined);
});

test("a stale handle never reads the content of the slot's next user", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 1, chunks: 4, chunkSize: 8 }));
  const first = store.open(bytes("first"));
  store.release(first);
  const second = store.open(bytes("second"));
  assert.notEqual(second, first);
  assert.equal(store.read(first, 0, 10), undefined);
  assert.equal(text(store.read(second, 0, 10)), "second");
});

test("released handles and chunks are reused, so churn does not grow the store", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 2, chunks: 3, chunkSize: 16 }));
  for (let i = 0; i < 10_000; i++) {
    const handle = store.open(bytes(`snapshot ${i} `.repeat(3)));
    assert.equal(text(store.read(handle, 0, 100)), `snapshot ${i} `.repeat(3));
    store.release(handle);
  }
  assert.equal(store.openCount, 0);
});

test("full: ENFILE for handles, ENOMEM for content, and nothing leaks on failure", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 2, chunks: 2, chunkSize: 4 }));
  const isErrno = (code: number) => (err: unknown) => err instanceof FsError && err.errno === code;
  assert.throws(() => store.open(bytes("123456789")), isErrno(errno.ENOMEM));
  assert.equal(store.openCount, 0);
  const a = store.open(bytes("1234"));
  store.open(bytes("5678"));
  assert.throws(() => store.open(new Uint8Array(0)), isErrno(errno.ENFILE));
  store.release(a);
  assert.equal(text(store.read(store.open(bytes("abcd")), 0, 4)), "abcd");
});

test("replace frees the old chunks and keeps the old content when the heap is full", () => {
  const isErrno = (code: number) => (err: unknown) => err instanceof FsError && err.errno === code;
  const store = new HandleStore(createHandleStoreMemory({ handles: 2, chunks: 4, chunkSize: 8 }));
  const handle = store.open(bytes("first rendering"));
  assert.equal(store.readSinceStored(handle), false);
  assert.equal(text(store.read(handle, 0, 3)), "fir");
  assert.equal(store.readSinceStored(handle), true);
  assert.throws(() => store.replace(handle, bytes("second, much longer rendering")), isErrno(errno.ENOMEM));
  assert.equal(text(store.read(handle, 0, 100)), "first rendering", "unchanged after a failed replace");
  for (let i = 0; i < 100; i++) assert.equal(store.replace(handle, bytes(`rendering ${i}`)), true, "old chunks are given back");
  assert.equal(store.readSinceStored(handle), false);
  assert.equal(text(store.read(handle, 0, 100)), "rendering 99");
  store.release(handle);
  assert.equal(store.replace(handle, bytes("x")), false);
  assert.equal(store.readSinceStored(handle), undefined);
});

test("sizes are validated", () => {
  assert.throws(() => createHandleStoreMemory({ handles: 0, chunks: 1, chunkSize: 8 }), /handles/);
  assert.throws(() => createHandleStoreMemory({ handles: 1, chunks: 1, chunkSize: 6 }), /multiple of 4/);
});

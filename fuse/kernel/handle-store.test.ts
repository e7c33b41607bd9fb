import { test } from "node:test";
import assert from "node:assert/strict";
import { FsError, errno } from "../node.ts";
import { HandleStore, ReaderBoundError, StoreFullError, createHandleStoreMemory, handleStoreLiveRanges, type HandleOwner } from "./handle-store.ts";

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);
const owner = (reader = "cgroup a", nodeId = 7, pid = 100): HandleOwner => ({ reader, nodeId, pid });
const isErrno = (code: number) => (err: unknown) => err instanceof FsError && err.errno === code;

test("reads slice the rendering across chunk boundaries", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 4, chunks: 8, chunkSize: 8 }));
  const content = "0123456789abcdefghijklmnopqrstuvwxyz";
  const handle = store.open(bytes(content), owner());
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
  const empty = store.open(new Uint8Array(0), owner());
  assert.equal(store.read(empty, 0, 10)?.byteLength, 0);
  assert.equal(store.release(empty), true);
  assert.equal(store.read(empty, 0, 10), undefined);
  assert.equal(store.release(empty), false);
  assert.equal(store.read(0, 0, 1), undefined);
  assert.equal(store.read(123456, 0, 1), undefined);
});

test("a stale handle never reads the content of the slot's next user", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 1, chunks: 4, chunkSize: 8 }));
  const first = store.open(bytes("first"), owner());
  store.release(first);
  const second = store.open(bytes("second"), owner());
  assert.notEqual(second, first);
  assert.equal(store.read(first, 0, 10), undefined);
  assert.equal(text(store.read(second, 0, 10)), "second");
});

test("released handles and chunks are reused, so churn does not grow the store", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 2, chunks: 3, chunkSize: 16 }));
  for (let i = 0; i < 10_000; i++) {
    const handle = store.open(bytes(`snapshot ${i} `.repeat(3)), owner());
    assert.equal(text(store.read(handle, 0, 100)), `snapshot ${i} `.repeat(3));
    store.release(handle);
  }
  assert.equal(store.openCount, 0);
  assert.deepEqual(store.usageOf("cgroup a"), { handles: 0, chunks: 0 });
});

test("full for everyone: ENFILE for handles, ENOMEM for content, and nothing leaks on failure", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 2, chunks: 2, chunkSize: 4, readers: 8 }));
  assert.throws(() => store.open(bytes("123456789"), owner()), isErrno(errno.ENOMEM));
  assert.equal(store.openCount, 0);
  assert.deepEqual(store.usageOf("cgroup a"), { handles: 0, chunks: 0 });
  const a = store.open(bytes("1234"), owner("cgroup a"));
  store.open(bytes("5678"), owner("cgroup b"));
  assert.throws(() => store.open(new Uint8Array(0), owner("cgroup c")), (err) => err instanceof StoreFullError && err.errno === errno.ENFILE);
  store.release(a);
  assert.equal(text(store.read(store.open(bytes("abcd"), owner("cgroup c")), 0, 4)), "abcd");
});

test("a reader past its bound of handles gets EMFILE alone; the others keep opening; closing makes room", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 64, chunks: 64, chunkSize: 8, handlesPerReader: 5 }));
  const held = Array.from({ length: 5 }, () => store.open(bytes("x"), owner("greedy")));
  assert.throws(() => store.open(bytes("x"), owner("greedy")), (err) => err instanceof ReaderBoundError && err.errno === errno.EMFILE && err.bound === "handles");
  for (let i = 0; i < 5; i++) store.open(bytes("y"), owner("polite"));
  assert.deepEqual(store.usageOf("greedy"), { handles: 5, chunks: 5 });
  store.release(held[0]);
  assert.ok(store.open(bytes("x"), owner("greedy")) > 0);
});

test("a reader past its bound of content gets ENOMEM alone, at open and at a re-render", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 64, chunks: 64, chunkSize: 8, chunksPerReader: 4 }));
  const handle = store.open(bytes("0123456789abcdef"), owner("big")); // 2 chunks
  store.open(bytes("01234567"), owner("big")); // 3
  assert.throws(() => store.open(bytes("0123456789"), owner("big")), (err) => err instanceof ReaderBoundError && err.errno === errno.ENOMEM && err.bound === "content");
  assert.ok(store.open(bytes("0123456789abcdef0123"), owner("other")) > 0);
  // Replacing 2 chunks by 3 fits (the old ones go back); by 4 it does not, and the old content stays.
  assert.equal(store.replace(handle, bytes("0123456789abcdef0123")), true);
  assert.throws(() => store.replace(handle, bytes("x".repeat(25))), isErrno(errno.ENOMEM));
  assert.equal(text(store.read(handle, 0, 100)), "0123456789abcdef0123");
  assert.deepEqual(store.usageOf("big"), { handles: 2, chunks: 4 });
});

test("a reader's refusals are worth one log line per ten minutes", () => {
  let now = 1_000_000_000_000;
  const store = new HandleStore(createHandleStoreMemory({ handles: 16, chunks: 16, chunkSize: 8, handlesPerReader: 1 }), { now: () => now });
  store.open(bytes("x"), owner("greedy"));
  store.open(bytes("x"), owner("other"));
  const refusal = (reader: string) => {
    try {
      store.open(bytes("x"), owner(reader));
    } catch (err) {
      return (err as ReaderBoundError).worthLogging;
    }
    assert.fail("expected a refusal");
  };
  assert.deepEqual([refusal("greedy"), refusal("greedy"), refusal("other")], [true, false, true]);
  now += 9 * 60_000;
  assert.equal(refusal("greedy"), false);
  now += 60_000;
  assert.equal(refusal("greedy"), true);
});

test("readers that hold nothing give their slot to new readers", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 16, chunks: 16, chunkSize: 8, readers: 2 }));
  const a = store.open(bytes("a"), owner("a"));
  store.open(bytes("b"), owner("b"));
  assert.throws(() => store.open(bytes("c"), owner("c")), isErrno(errno.ENFILE));
  store.release(a);
  assert.ok(store.open(bytes("c"), owner("c")) > 0);
  assert.deepEqual(store.usageOf("a"), { handles: 0, chunks: 0 });
});

test("replace frees the old chunks, marks the content unread, and keeps the old content when the heap is full", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 2, chunks: 4, chunkSize: 8 }));
  const handle = store.open(bytes("first rendering"), owner());
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

test("renderingLength: what a process holds open for a node, for fstat", () => {
  const store = new HandleStore(createHandleStoreMemory({ handles: 8, chunks: 8, chunkSize: 8 }));
  const first = store.open(bytes("12345"), owner("a", 7, 100));
  const latest = store.open(bytes("123"), owner("a", 7, 100));
  store.open(bytes("123456789"), owner("a", 7, 200));
  assert.equal(store.renderingLength(7, 100), 3, "its latest open's");
  assert.equal(store.renderingLength(7, 300), undefined);
  assert.equal(store.renderingLength(8, 100), undefined);
  store.release(latest);
  assert.equal(store.renderingLength(7, 100), 5, "another of its own once the latest is closed");
  store.replace(first, bytes("1234567"));
  assert.equal(store.renderingLength(7, 100), 7);
  store.release(first);
  assert.equal(store.renderingLength(7, 100), undefined);
  assert.equal(store.renderingLength(7, 200), 9);
});

/** Random opens and releases against a model of what is open, checking renderingLength after each step. */
function churnAgainstModel(store: HandleStore, settings: { steps: number; maxOpen: number; pids: number }): void {
  const open = new Map<number, { nodeId: number; pid: number; length: number }>();
  let seed = 42;
  const random = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  for (let step = 0; step < settings.steps; step++) {
    // Phases of filling and draining, so that an index that grows is grown and emptied again.
    const filling = Math.floor(step / (4 * settings.maxOpen)) % 2 === 0;
    if (open.size < settings.maxOpen && (open.size === 0 || random(4) !== (filling ? 0 : 1) * 3)) {
      const entry = { nodeId: 2 + random(5), pid: 100 + random(settings.pids), length: 1 + random(20) };
      open.set(store.open(bytes("x".repeat(entry.length)), owner("r", entry.nodeId, entry.pid)), entry);
    } else {
      const handles = [...open.keys()];
      const handle = handles[random(handles.length)];
      store.release(handle);
      open.delete(handle);
    }
    const nodeId = 2 + random(5);
    const pid = 100 + random(settings.pids);
    const held = [...open.values()].filter((entry) => entry.nodeId === nodeId && entry.pid === pid);
    const length = store.renderingLength(nodeId, pid);
    if (held.length === 0) assert.equal(length, undefined, `step ${step}`);
    else assert.ok(held.some((entry) => entry.length === length), `step ${step}: ${length} is one of ${held.map((entry) => entry.length)}`);
  }
  for (const [handle, entry] of open) assert.equal(store.renderingLength(entry.nodeId, entry.pid) !== undefined, true, `handle ${handle}`);
}

test("the opener index agrees with a walk over every handle through heavy churn", () => {
  churnAgainstModel(new HandleStore(createHandleStoreMemory({ handles: 64, chunks: 256, chunkSize: 8 })), { steps: 20_000, maxOpen: 60, pids: 4 });
});

test("the opener index grows while thousands of processes hold views, and still agrees", () => {
  churnAgainstModel(new HandleStore(createHandleStoreMemory({ handles: 4096, chunks: 4096, chunkSize: 32 })), { steps: 40_000, maxOpen: 3000, pids: 5000 });
});

test("a store sized for a million handles keeps few pages live while hundreds of short-lived readers hold views", () => {
  const memory = createHandleStoreMemory({ handles: 1 << 20, chunks: 1024, chunkSize: 8 });
  const store = new HandleStore(memory);
  // Each process reads once and goes, as `cat` run by a monitoring script does; 300 hold a view at a time.
  const held: number[] = [];
  for (let pid = 1000; pid < 21_000; pid++) {
    held.push(store.open(bytes("1"), owner("cgroup", 2, pid)));
    if (held.length > 300) store.release(held.shift()!);
  }
  const liveBytes = handleStoreLiveRanges(memory).reduce((sum, [start, end]) => sum + end - start, 0);
  // Slots, one reader, chunks and an index sized for the pairs open now: a few pages, where
  // an index hashed over its full size puts each pair on a page of its own (over 1 MiB here).
  assert.ok(liveBytes <= 64 * 1024, `${liveBytes} bytes live`);
  assert.equal(store.renderingLength(2, 20_999), 1);
});

test("sizes are validated; the default reserves much and commits nothing up front", () => {
  assert.throws(() => createHandleStoreMemory({ handles: 0, chunks: 1, chunkSize: 8 }), /handles/);
  assert.throws(() => createHandleStoreMemory({ handles: 1, chunks: 1, chunkSize: 6 }), /multiple of 4/);
  assert.throws(() => createHandleStoreMemory({ handles: 1, chunks: 1, chunkSize: 8, handlesPerReader: 0 }), /handlesPerReader/);
  const memory = createHandleStoreMemory();
  assert.ok(memory.byteLength > 1 << 30, "room for a million handles and 1 GiB of content");
  const store = new HandleStore(memory);
  assert.equal(store.openCount, 0);
});

test("live ranges: a store rebuilt from them over zeroed memory answers as the original (a handover)", () => {
  const memory = createHandleStoreMemory({ handles: 32, chunks: 128, chunkSize: 8, readers: 8 });
  const store = new HandleStore(memory);
  const handles = Array.from({ length: 10 }, (_, i) => store.open(bytes(`content ${i} `.repeat(i)), owner(`cgroup ${i % 3}`)));
  for (const handle of handles.filter((_, i) => i % 3 === 0)) store.release(handle);
  const copy = new SharedArrayBuffer(memory.byteLength);
  let sent = 0;
  for (const [start, end] of handleStoreLiveRanges(memory)) {
    new Uint8Array(copy, start, end - start).set(new Uint8Array(memory, start, end - start));
    sent += end - start;
  }
  assert.ok(sent < memory.byteLength);
  assert.deepEqual(new Uint8Array(copy), new Uint8Array(memory));
  const successor = new HandleStore(copy);
  assert.equal(text(successor.read(handles[2], 0, 100)), "content 2 content 2 ");
  assert.deepEqual(successor.usageOf("cgroup 1"), store.usageOf("cgroup 1"));
});

test("live ranges carry an index that grew: the successor finds every process's view and goes on growing it", () => {
  const memory = createHandleStoreMemory({ handles: 4096, chunks: 4096, chunkSize: 32 });
  const store = new HandleStore(memory);
  const handles = Array.from({ length: 1500 }, (_, i) => store.open(bytes("x".repeat(1 + (i % 20))), owner("cgroup", 2, 1000 + i)));
  const copy = new SharedArrayBuffer(memory.byteLength);
  for (const [start, end] of handleStoreLiveRanges(memory)) new Uint8Array(copy, start, end - start).set(new Uint8Array(memory, start, end - start));
  const successor = new HandleStore(copy);
  for (let i = 0; i < 1500; i++) assert.equal(successor.renderingLength(2, 1000 + i), 1 + (i % 20), `pid ${1000 + i}`);
  for (const handle of handles.slice(0, 750)) assert.ok(successor.release(handle));
  assert.equal(successor.renderingLength(2, 1000), undefined);
  for (let i = 0; i < 1500; i++) successor.open(bytes("y"), owner("cgroup", 3, 5000 + i));
  assert.equal(successor.renderingLength(2, 2499), 20);
  for (let i = 0; i < 1500; i++) assert.equal(successor.renderingLength(3, 5000 + i), 1, `pid ${5000 + i}`);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { HandleStore } from "../kernel/handle-store.ts";
import { NodeTable } from "../kernel/node-table.ts";
import { createSharedFuseState } from "../kernel/request-loop.ts";
import { allocateState, nonZeroPageRanges, packState, stateSizes, unpackState } from "./state.ts";

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

/** Node ids and handles as a server leaves them after a while: some given back, some live. */
function usedState() {
  const state = createSharedFuseState({ nodes: 64, handles: { handles: 16, chunks: 64, chunkSize: 16 } });
  const nodes = new NodeTable(state.nodes);
  const handles = new HandleStore(state.handles);
  const dirs = ["containers", "proc", "sys"].map((name) => nodes.lookup(1, name));
  const files = Array.from({ length: 20 }, (_, i) => nodes.lookup(dirs[i % 3].nodeId, `file-${i}`));
  for (const file of files.filter((_, i) => i % 4 === 0)) nodes.forget(file.nodeId, 1);
  const open = Array.from({ length: 10 }, (_, i) => handles.open(new TextEncoder().encode(`content ${i} `.repeat(i))));
  for (const handle of open.filter((_, i) => i % 3 === 0)) handles.release(handle);
  return { state, files, open };
}

test("packed and unpacked over zeroed memory, the tables are byte for byte the sender's", () => {
  const { state } = usedState();
  const { layout, bytes } = packState(state);
  const copy = allocateState(stateSizes(state));
  unpackState(copy, layout, bytes);
  assert.deepEqual(new Uint8Array(copy.nodes), new Uint8Array(state.nodes));
  assert.deepEqual(new Uint8Array(copy.handles), new Uint8Array(state.handles));
  assert.ok(bytes.byteLength < state.nodes.byteLength + state.handles.byteLength, "untouched memory is not sent");
});

test("the successor's tables answer for the ids and handles the kernel holds, and keep counting", () => {
  const { state, files, open } = usedState();
  const { layout, bytes } = packState(state);
  const copy = allocateState(stateSizes(state));
  unpackState(copy, layout, bytes);
  const nodes = new NodeTable(copy.nodes);
  const handles = new HandleStore(copy.handles);
  assert.deepEqual(nodes.path(files[1].nodeId)?.names, ["proc", "file-1"]);
  assert.equal(nodes.path(files[0].nodeId), undefined, "a forgotten id stays forgotten");
  assert.equal(text(handles.read(open[2], 0, 100)), "content 2 content 2 ");
  assert.equal(handles.read(open[3], 0, 100), undefined, "a released handle stays released");
  const fresh = nodes.lookup(1, "new-name");
  assert.ok(!files.some((file) => file.nodeId === fresh.nodeId && file.generation === fresh.generation), "a new id never repeats a live one");
  assert.equal(text(handles.read(handles.open(new TextEncoder().encode("later")), 0, 10)), "later");
});

test("state that does not fit its layout or the tables is refused", () => {
  const { state } = usedState();
  const { layout, bytes } = packState(state);
  const copy = allocateState(stateSizes(state));
  assert.throws(() => unpackState(copy, layout, bytes.subarray(1)), /shorter than its layout/);
  assert.throws(() => unpackState(copy, layout, new Uint8Array(bytes.byteLength + 1)), /1 bytes more/);
  const small = allocateState({ nodes: 64, handles: state.handles.byteLength });
  assert.throws(() => unpackState(small, layout, bytes), /does not fit a table of 64 bytes/);
});

test("the tree's state goes into the successor's own memory, only its written pages on the wire", () => {
  const treeState = new SharedArrayBuffer(8 * 4096);
  const written = new Uint8Array(treeState);
  written[5] = 1;
  written[4096 + 17] = 2;
  written[5 * 4096 + 4095] = 3;
  const state = { ...createSharedFuseState({ nodes: 64, handles: { handles: 16, chunks: 64, chunkSize: 16 } }), treeState };
  assert.deepEqual(nonZeroPageRanges(treeState), [
    [0, 2 * 4096],
    [5 * 4096, 6 * 4096],
  ]);
  const { layout, bytes } = packState(state);
  assert.deepEqual(stateSizes(state).treeState, treeState.byteLength);
  const successorsTree = new SharedArrayBuffer(treeState.byteLength);
  const copy = allocateState(stateSizes(state), successorsTree);
  assert.equal(copy.treeState, successorsTree, "the successor's tree already holds this memory");
  unpackState(copy, layout, bytes);
  assert.deepEqual(new Uint8Array(successorsTree), written);
  assert.ok(bytes.byteLength < state.nodes.byteLength + state.handles.byteLength + 3 * 4096, "untouched pages are not sent");
});

test("tree state the successor cannot hold is refused before anything is laid", () => {
  const treeState = new SharedArrayBuffer(4096);
  new Uint8Array(treeState)[0] = 1;
  const state = { ...createSharedFuseState({ nodes: 64, handles: { handles: 16, chunks: 64, chunkSize: 16 } }), treeState };
  assert.throws(() => allocateState(stateSizes(state), new SharedArrayBuffer(8192)), /tree state is 4096 bytes; this server's is 8192/);
  assert.throws(() => allocateState(stateSizes(state)), /this server's is absent/);
  const { layout, bytes } = packState(state);
  const withoutTree = allocateState({ nodes: state.nodes.byteLength, handles: state.handles.byteLength });
  assert.throws(() => unpackState(withoutTree, layout, bytes), /carries tree state; this server keeps none/);
  assert.deepEqual(new Uint8Array(withoutTree.nodes), new Uint8Array(state.nodes.byteLength), "nothing laid");
});

/**
 * The state the kernel refers to (node ids, open handles), and the tree's own (load
 * averages), moved from a server to its successor: all are flat shared memory, so what
 * moves is the bytes of their live ranges; the successor lays them over zeroed memory of
 * the same sizes.
 */

import { handleStoreLiveRanges } from "../kernel/handle-store.ts";
import { nodeTableLiveRanges, type ByteRange } from "../kernel/node-table.ts";
import type { SharedFuseState } from "../kernel/request-loop.ts";

/** The memory sizes a successor allocates before the state arrives. */
export interface StateSizes {
  nodes: number;
  handles: number;
  /** Absent when the server's tree keeps no state of its own. */
  treeState?: number;
}

/** Which ranges of each table the packed bytes hold, in order. */
export interface StateLayout {
  nodes: ByteRange[];
  handles: ByteRange[];
  treeState: ByteRange[];
}

export function stateSizes(state: SharedFuseState): StateSizes {
  const sizes: StateSizes = { nodes: state.nodes.byteLength, handles: state.handles.byteLength };
  if (state.treeState !== undefined) sizes.treeState = state.treeState.byteLength;
  return sizes;
}

/**
 * Zeroed tables of the given sizes, valid only once unpackState() has filled them; the
 * tree's state goes into the successor's own `treeState` (its tree already holds that
 * memory), which must be untouched and of the sender's size.
 */
export function allocateState(sizes: StateSizes, treeState?: SharedArrayBuffer): SharedFuseState {
  if (sizes.treeState !== undefined && treeState?.byteLength !== sizes.treeState) {
    throw new Error(`the server's tree state is ${sizes.treeState} bytes; this server's is ${treeState?.byteLength ?? "absent"}`);
  }
  return { nodes: new SharedArrayBuffer(sizes.nodes), handles: new SharedArrayBuffer(sizes.handles), treeState };
}

/** Bytes of tree state per range unit: its untouched (all-zero) pages are not sent. */
const treeStatePageBytes = 4096;

/** The pages of `memory` that hold any non-zero byte, adjacent ones merged. */
export function nonZeroPageRanges(memory: SharedArrayBuffer): ByteRange[] {
  const ranges: [number, number][] = [];
  const bytes = new Uint8Array(memory);
  for (let start = 0; start < bytes.byteLength; start += treeStatePageBytes) {
    const end = Math.min(start + treeStatePageBytes, bytes.byteLength);
    if (isZero(bytes, start, end)) continue;
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last[1] === start) last[1] = end;
    else ranges.push([start, end]);
  }
  return ranges;
}

function isZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Copies the live ranges out; the tables must not change meanwhile: the request loops are
 * stopped, and the tree state's other writer (the load-average sampler) runs on this thread.
 */
export function packState(state: SharedFuseState): { layout: StateLayout; bytes: Uint8Array } {
  const layout: StateLayout = {
    nodes: nodeTableLiveRanges(state.nodes),
    handles: handleStoreLiveRanges(state.handles),
    treeState: state.treeState === undefined ? [] : nonZeroPageRanges(state.treeState),
  };
  const parts = rangesIn(state, layout);
  const bytes = new Uint8Array(parts.reduce((sum, [, [start, end]]) => sum + (end - start), 0));
  let at = 0;
  for (const [memory, [start, end]] of parts) {
    bytes.set(new Uint8Array(memory, start, end - start), at);
    at += end - start;
  }
  return { layout, bytes };
}

/** Lays packed bytes over `into` (zeroed tables of the sender's sizes); rejects anything that does not fit. */
export function unpackState(into: SharedFuseState, layout: StateLayout, bytes: Uint8Array): void {
  const parts = rangesIn(into, layout);
  let at = 0;
  for (const [memory, range] of parts) {
    const [start, end] = range;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > memory.byteLength) {
      throw new Error(`handover state range [${start}, ${end}) does not fit a table of ${memory.byteLength} bytes`);
    }
    if (at + (end - start) > bytes.byteLength) throw new Error("handover state is shorter than its layout says");
    new Uint8Array(memory, start, end - start).set(bytes.subarray(at, at + (end - start)));
    at += end - start;
  }
  if (at !== bytes.byteLength) throw new Error(`handover state has ${bytes.byteLength - at} bytes more than its layout says`);
}

/** Each range of the layout with the table it belongs to, in the packing order. */
function rangesIn(state: SharedFuseState, layout: StateLayout): (readonly [SharedArrayBuffer, ByteRange])[] {
  if (layout.treeState.length > 0 && state.treeState === undefined) throw new Error("handover state carries tree state; this server keeps none");
  return [
    ...layout.nodes.map((range) => [state.nodes, range] as const),
    ...layout.handles.map((range) => [state.handles, range] as const),
    ...layout.treeState.map((range) => [state.treeState!, range] as const),
  ];
}

/**
 * The state the kernel refers to (node ids, open handles), moved from a server to its
 * successor: both tables are flat shared memory, so what moves is the bytes of their
 * live ranges; the successor lays them over zeroed memory of the same sizes.
 */

import { handleStoreLiveRanges } from "../kernel/handle-store.ts";
import { nodeTableLiveRanges, type ByteRange } from "../kernel/node-table.ts";
import type { SharedFuseState } from "../kernel/request-loop.ts";

/** The memory sizes a successor allocates before the state arrives. */
export interface StateSizes {
  nodes: number;
  handles: number;
}

/** Which ranges of each table the packed bytes hold, in order. */
export interface StateLayout {
  nodes: ByteRange[];
  handles: ByteRange[];
}

export function stateSizes(state: SharedFuseState): StateSizes {
  return { nodes: state.nodes.byteLength, handles: state.handles.byteLength };
}

/** Zeroed tables of the given sizes: valid only once unpackState() has filled them. */
export function allocateState(sizes: StateSizes): SharedFuseState {
  return { nodes: new SharedArrayBuffer(sizes.nodes), handles: new SharedArrayBuffer(sizes.handles) };
}

/** Copies the live ranges out; the tables must not change meanwhile (the loop is stopped). */
export function packState(state: SharedFuseState): { layout: StateLayout; bytes: Uint8Array } {
  const layout: StateLayout = { nodes: nodeTableLiveRanges(state.nodes), handles: handleStoreLiveRanges(state.handles) };
  const parts = [...layout.nodes.map((range) => [state.nodes, range] as const), ...layout.handles.map((range) => [state.handles, range] as const)];
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
  const parts = [...layout.nodes.map((range) => [into.nodes, range] as const), ...layout.handles.map((range) => [into.handles, range] as const)];
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

/**
 * FUSE node ids, shared by every worker thread on one /dev/fuse fd: the kernel may send
 * LOOKUP to one worker and GETATTR for the answer to another.
 *
 * An id names one (parent id, name) pair and lives while the kernel holds lookups on
 * it (each LOOKUP reply adds one, FORGET gives them back) or while it has live
 * children (their paths run through it). Freed ids are reused with a new generation,
 * so thousands of containers coming and going keep the table at the size of what the
 * kernel currently caches. The table is a fixed-size hash table in a SharedArrayBuffer;
 * memory the kernel never asks for is never touched, so a generous capacity is cheap.
 */

import { FsError, errno } from "../node.ts";
import { rootNodeId } from "./protocol.ts";
import { SharedLock } from "./shared-lock.ts";

export const maxNameBytes = 255;

const headerInts = 8;
const H_LOCK = 0;
const H_CAPACITY = 1;
const H_BUCKETS = 2;
const H_FREE_HEAD = 3;
const H_NEXT_UNUSED = 4;
const H_LIVE = 5;

const stride = 6;
const F_GENERATION = 0;
/** 0 marks a free slot; the root's parent is itself. */
const F_PARENT = 1;
const F_LOOKUPS = 2;
/** Hash chain while in use, free list while free. */
const F_NEXT = 3;
const F_NAME_LENGTH = 4;
const F_CHILDREN = 5;

export const defaultNodeCapacity = 1 << 17;

function bucketCountFor(capacity: number): number {
  let buckets = 1;
  while (buckets < capacity) buckets *= 2;
  return buckets;
}

/** Shared memory for a table of `capacity` ids (slot 0 unused, slot 1 the root). */
export function createNodeTableMemory(capacity: number = defaultNodeCapacity): SharedArrayBuffer {
  if (!Number.isInteger(capacity) || capacity < 2 || capacity > 2 ** 24) {
    throw new Error(`node table capacity must be an integer in 2..${2 ** 24}, got ${capacity}`);
  }
  const buckets = bucketCountFor(capacity);
  const memory = new SharedArrayBuffer(4 * (headerInts + capacity * stride + buckets) + capacity * maxNameBytes);
  const header = new Int32Array(memory, 0, headerInts);
  header[H_CAPACITY] = capacity;
  header[H_BUCKETS] = buckets;
  header[H_NEXT_UNUSED] = rootNodeId + 1;
  header[H_LIVE] = 1;
  const slots = new Int32Array(memory, 4 * headerInts, capacity * stride);
  slots[rootNodeId * stride + F_GENERATION] = 1;
  slots[rootNodeId * stride + F_PARENT] = rootNodeId;
  return memory;
}

/** A byte range [start, end) of a table's shared memory. */
export type ByteRange = readonly [start: number, end: number];

/**
 * The parts of the table's memory that can differ from zero: slots and names beyond
 * the highest id ever handed out are never written. A successor rebuilds the table
 * from these ranges over zeroed memory of the same size.
 */
export function nodeTableLiveRanges(memory: SharedArrayBuffer): ByteRange[] {
  const header = new Int32Array(memory, 0, headerInts);
  const capacity = header[H_CAPACITY];
  const slotsStart = 4 * headerInts;
  const bucketsStart = slotsStart + 4 * capacity * stride;
  const namesStart = bucketsStart + 4 * header[H_BUCKETS];
  const used = header[H_NEXT_UNUSED];
  return [
    [0, slotsStart + 4 * used * stride],
    [bucketsStart, namesStart],
    [namesStart, namesStart + used * maxNameBytes],
  ];
}

export interface NodeRef {
  nodeId: number;
  generation: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class NodeTable {
  readonly #header: Int32Array;
  readonly #slots: Int32Array;
  readonly #buckets: Int32Array;
  readonly #names: Uint8Array;
  readonly #lock: SharedLock;

  constructor(memory: SharedArrayBuffer) {
    this.#header = new Int32Array(memory, 0, headerInts);
    const capacity = this.#header[H_CAPACITY];
    const buckets = this.#header[H_BUCKETS];
    this.#slots = new Int32Array(memory, 4 * headerInts, capacity * stride);
    this.#buckets = new Int32Array(memory, 4 * (headerInts + capacity * stride), buckets);
    this.#names = new Uint8Array(memory, 4 * (headerInts + capacity * stride + buckets), capacity * maxNameBytes);
    this.#lock = new SharedLock(this.#header, H_LOCK);
  }

  /** Ids in use, the root included. */
  get liveCount(): number {
    return Atomics.load(this.#header, H_LIVE);
  }

  /** The id for `name` in `parentId`, created if new (the kernel holds no inode for it yet); counts one kernel lookup. */
  lookup(parentId: number, name: string): NodeRef & { created: boolean } {
    const nameBytes = encoder.encode(name);
    if (nameBytes.byteLength > maxNameBytes) throw new FsError(errno.ENAMETOOLONG, `name longer than ${maxNameBytes} bytes`);
    return this.#lock.withLock(() => {
      if (!this.#isLive(parentId)) throw new FsError(errno.ENOENT, `unknown parent node ${parentId}`);
      const known = this.#slotOf(parentId, nameBytes);
      if (known !== undefined) {
        this.#slots[known * stride + F_LOOKUPS]++;
        return { nodeId: known, generation: this.#slots[known * stride + F_GENERATION], created: false };
      }
      const bucket = this.#bucketOf(parentId, nameBytes);
      const slot = this.#allocate();
      const at = slot * stride;
      this.#slots[at + F_GENERATION]++;
      this.#slots[at + F_PARENT] = parentId;
      this.#slots[at + F_LOOKUPS] = 1;
      this.#slots[at + F_CHILDREN] = 0;
      this.#slots[at + F_NAME_LENGTH] = nameBytes.byteLength;
      this.#names.set(nameBytes, slot * maxNameBytes);
      this.#slots[at + F_NEXT] = this.#buckets[bucket];
      this.#buckets[bucket] = slot;
      this.#slots[parentId * stride + F_CHILDREN]++;
      this.#header[H_LIVE]++;
      return { nodeId: slot, generation: this.#slots[at + F_GENERATION], created: true };
    });
  }

  /** The id of `name` in `parentId` if the kernel holds it, without counting a lookup. */
  find(parentId: number, name: string): NodeRef | undefined {
    const nameBytes = encoder.encode(name);
    return this.#lock.withLock(() => {
      const slot = this.#slotOf(parentId, nameBytes);
      return slot === undefined ? undefined : { nodeId: slot, generation: this.#slots[slot * stride + F_GENERATION] };
    });
  }

  /** The names the kernel holds in `parentId`, with their ids: a scan of the ids in use. */
  children(parentId: number): Array<NodeRef & { name: string }> {
    return this.#lock.withLock(() => {
      const found: Array<NodeRef & { name: string }> = [];
      if (this.#slots[parentId * stride + F_CHILDREN] === 0) return found;
      for (let slot = rootNodeId + 1; slot < this.#header[H_NEXT_UNUSED]; slot++) {
        if (this.#slots[slot * stride + F_PARENT] === parentId) found.push({ nodeId: slot, generation: this.#slots[slot * stride + F_GENERATION], name: this.#name(slot) });
      }
      return found;
    });
  }

  /** The kernel gives back `count` lookups of `nodeId`; unknown ids are ignored. */
  forget(nodeId: number, count: number): void {
    if (nodeId === rootNodeId) return;
    this.#lock.withLock(() => {
      if (!this.#isLive(nodeId)) return;
      const at = nodeId * stride;
      this.#slots[at + F_LOOKUPS] = Math.max(0, this.#slots[at + F_LOOKUPS] - count);
      let slot = nodeId;
      while (slot !== rootNodeId && this.#slots[slot * stride + F_LOOKUPS] === 0 && this.#slots[slot * stride + F_CHILDREN] === 0) {
        const parent = this.#slots[slot * stride + F_PARENT];
        this.#free(slot);
        this.#slots[parent * stride + F_CHILDREN]--;
        slot = parent;
      }
    });
  }

  /**
   * Names from the root down to `nodeId` ([] for the root) with the id's generation,
   * read together so they always describe the same node; undefined if the id is not live.
   */
  path(nodeId: number): { names: string[]; generation: number } | undefined {
    return this.#lock.withLock(() => {
      if (!this.#isLive(nodeId)) return undefined;
      const names: string[] = [];
      for (let slot = nodeId; slot !== rootNodeId; slot = this.#slots[slot * stride + F_PARENT]) {
        names.push(this.#name(slot));
      }
      return { names: names.reverse(), generation: this.#slots[nodeId * stride + F_GENERATION] };
    });
  }

  /** The live id's parent (the root is its own parent), or undefined. */
  parentOf(nodeId: number): number | undefined {
    return this.#lock.withLock(() => (this.#isLive(nodeId) ? this.#slots[nodeId * stride + F_PARENT] : undefined));
  }

  generationOf(nodeId: number): number | undefined {
    return this.#lock.withLock(() => (this.#isLive(nodeId) ? this.#slots[nodeId * stride + F_GENERATION] : undefined));
  }

  /** The slot holding `nameBytes` in `parentId`; the caller holds the lock. */
  #slotOf(parentId: number, nameBytes: Uint8Array): number | undefined {
    for (let slot = this.#buckets[this.#bucketOf(parentId, nameBytes)]; slot !== 0; slot = this.#slots[slot * stride + F_NEXT]) {
      if (this.#slots[slot * stride + F_PARENT] === parentId && this.#nameEquals(slot, nameBytes)) return slot;
    }
    return undefined;
  }

  #isLive(nodeId: number): boolean {
    return Number.isInteger(nodeId) && nodeId >= rootNodeId && nodeId < this.#header[H_CAPACITY] && this.#slots[nodeId * stride + F_PARENT] !== 0;
  }

  #allocate(): number {
    const free = this.#header[H_FREE_HEAD];
    if (free !== 0) {
      this.#header[H_FREE_HEAD] = this.#slots[free * stride + F_NEXT];
      return free;
    }
    const unused = this.#header[H_NEXT_UNUSED];
    if (unused >= this.#header[H_CAPACITY]) {
      throw new FsError(errno.ENFILE, `node table full (${this.#header[H_CAPACITY]} ids)`);
    }
    this.#header[H_NEXT_UNUSED] = unused + 1;
    return unused;
  }

  #free(slot: number): void {
    const at = slot * stride;
    const bucket = this.#bucketOf(this.#slots[at + F_PARENT], this.#nameBytes(slot));
    if (this.#buckets[bucket] === slot) {
      this.#buckets[bucket] = this.#slots[at + F_NEXT];
    } else {
      let previous = this.#buckets[bucket];
      while (this.#slots[previous * stride + F_NEXT] !== slot) previous = this.#slots[previous * stride + F_NEXT];
      this.#slots[previous * stride + F_NEXT] = this.#slots[at + F_NEXT];
    }
    this.#slots[at + F_PARENT] = 0;
    this.#slots[at + F_NEXT] = this.#header[H_FREE_HEAD];
    this.#header[H_FREE_HEAD] = slot;
    this.#header[H_LIVE]--;
  }

  #nameBytes(slot: number): Uint8Array {
    const start = slot * maxNameBytes;
    return this.#names.subarray(start, start + this.#slots[slot * stride + F_NAME_LENGTH]);
  }

  #name(slot: number): string {
    // TextDecoder refuses views of shared memory, so copy the few bytes out first.
    return decoder.decode(this.#nameBytes(slot).slice());
  }

  #nameEquals(slot: number, nameBytes: Uint8Array): boolean {
    if (this.#slots[slot * stride + F_NAME_LENGTH] !== nameBytes.byteLength) return false;
    const start = slot * maxNameBytes;
    for (let i = 0; i < nameBytes.byteLength; i++) {
      if (this.#names[start + i] !== nameBytes[i]) return false;
    }
    return true;
  }

  /** FNV-1a over the parent id and the name. */
  #bucketOf(parentId: number, nameBytes: Uint8Array): number {
    let hash = 0x811c9dc5 ^ parentId;
    hash = Math.imul(hash, 0x01000193);
    for (let i = 0; i < nameBytes.byteLength; i++) hash = Math.imul(hash ^ nameBytes[i], 0x01000193);
    return (hash >>> 0) & (this.#header[H_BUCKETS] - 1);
  }
}

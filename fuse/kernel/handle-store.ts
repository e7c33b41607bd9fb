/**
 * Open file and directory handles with the content rendering each holds, shared by every
 * worker thread: OPEN may reach one worker and the READs another.
 *
 * Content lives in a shared heap of fixed-size chunks chained per handle, so no worker
 * needs another's memory and a successor loop on the same fd can take the store over
 * whole. Handles carry a generation so a stale one answers EBADF instead of someone
 * else's content.
 *
 * The memory is one large reservation that grows on demand: zero means free everywhere,
 * so pages are committed only as handles and chunks are first used, and the default
 * capacity costs address space, not RAM. What no reader may do is take it all: every
 * handle is charged to the cgroup of the process that opened it, and a cgroup holding its
 * bound of handles (or of content) gets EMFILE (ENOMEM) for itself alone while every other
 * reader keeps opening. The store says when such a refusal is worth a log line: once per
 * cgroup per ten minutes.
 */

import { hashKey } from "../../core/key-hash.ts";
import { FsError, errno } from "../node.ts";
import { SharedLock } from "./shared-lock.ts";

const H_LOCK = 0;
const H_HANDLES = 1;
const H_CHUNKS = 2;
const H_CHUNK_SIZE = 3;
/** Free lists hold index + 1, so that 0 (zeroed memory) is the empty list. */
const H_FREE_HANDLE = 4;
const H_FREE_CHUNK = 5;
const H_NEXT_UNUSED_HANDLE = 6;
const H_NEXT_UNUSED_CHUNK = 7;
const H_READERS = 8;
const H_HANDLES_PER_READER = 9;
const H_CHUNKS_PER_READER = 10;
/** Minute (since the epoch) the store last logged being full, for rate limiting. */
const H_FULL_LOGGED = 11;
/** Entries of the opener index in use now: a power of two. */
const H_OPENER_ENTRIES = 12;
/** (node, pid) pairs the opener index holds. */
const H_OPENER_PAIRS = 13;
const headerInts = 16;

const stride = 10;
const F_GENERATION = 0;
const F_OPEN = 1;
/** First chunk of the content, -1 for none. */
const F_FIRST_CHUNK = 2;
const F_LENGTH = 3;
const F_NEXT_FREE = 4;
/** 1 while the content has not been read since it was stored (seq_file's "nothing read yet"). */
const F_UNREAD = 5;
/** The reader slot charged for this handle. */
const F_READER = 6;
const F_NODE = 7;
const F_PID = 8;
const F_CHUNK_COUNT = 9;

/** A reader (reading cgroup): state, hashA, hashB, handles, chunks, minute last logged. */
const readerStride = 6;
const R_STATE = 0;
const R_HASH_A = 1;
const R_HASH_B = 2;
const R_HANDLES = 3;
const R_CHUNKS = 4;
const R_LOGGED = 5;
const readerInUse = 1;

/**
 * The opener index: which handles a process holds for a node, so that GETATTR finds them
 * without a walk over every handle. Linear probing, deletion by backward shift (no
 * tombstones to pile up under churn). An entry: node id, pid, count, latest slot + 1
 * (0 when the latest was released and another of the pair must be looked for).
 *
 * It starts small and doubles whenever it is half full: every new process reading a view
 * is a new pair, hashed anywhere in the index, so an index sized for a million handles
 * from the start had short-lived readers touch a new page of it at nearly every open
 * (32 MiB resident in the end). Sized by the pairs open at once, the pages stay few.
 */
const openerStride = 4;
const O_NODE = 0;
const O_PID = 1;
const O_COUNT = 2;
const O_LATEST = 3;

const noChunk = -1;
const logEveryMinutes = 10;
/** Generations stay below 2^31 so handle numbers stay safe integers (2^31 × 2^20 < 2^53). */
const maxGeneration = 2 ** 31 - 1;

export interface HandleStoreSize {
  /** Handles open at once, for all readers. */
  handles: number;
  /** Content chunks in use at once, for all readers. */
  chunks: number;
  chunkSize: number;
  /** Handles one reading cgroup may hold open. */
  handlesPerReader?: number;
  /** Content chunks one reading cgroup's open handles may hold. */
  chunksPerReader?: number;
  /** Reading cgroups that can hold handles at once. */
  readers?: number;
}

/**
 * A million handles and 1 GiB of content at most, committed as used; one cgroup may hold
 * 4,096 open views (the default `ulimit -n` is 1,024) and 16 MiB of their content.
 */
export const defaultHandleStoreSize: Required<HandleStoreSize> = {
  handles: 1 << 20,
  chunks: 1 << 18,
  chunkSize: 4096,
  handlesPerReader: 4096,
  chunksPerReader: 4096,
  readers: 1 << 14,
};

/** Entries the opener index starts with: 512 pairs open at once before it first grows (16 KiB). */
const initialOpenerEntries = 1024;

/** Entries of the opener index at most: a power of two, at least twice the handles, so probes stay short. */
function openerEntriesFor(handles: number): number {
  let entries = 2;
  while (entries < 2 * handles) entries *= 2;
  return entries;
}

function layout(handles: number, chunks: number, readers: number) {
  const slotsAt = headerInts;
  const readersAt = slotsAt + handles * stride;
  const openersAt = readersAt + readers * readerStride;
  const openerEntries = openerEntriesFor(handles);
  const chunkNextAt = openersAt + openerEntries * openerStride;
  const heapByte = 4 * (chunkNextAt + chunks);
  return { slotsAt, readersAt, openersAt, openerEntries, chunkNextAt, heapByte };
}

export function createHandleStoreMemory(size: HandleStoreSize = defaultHandleStoreSize): SharedArrayBuffer {
  const full: Required<HandleStoreSize> = {
    handlesPerReader: Math.min(size.handles, defaultHandleStoreSize.handlesPerReader),
    chunksPerReader: Math.min(size.chunks, defaultHandleStoreSize.chunksPerReader),
    readers: Math.min(size.handles, defaultHandleStoreSize.readers),
    ...size,
  };
  for (const [name, value] of Object.entries(full)) {
    if (!Number.isInteger(value) || value < 1 || value > 2 ** 20) throw new Error(`handle store ${name} must be an integer in 1..${2 ** 20}, got ${value}`);
  }
  if (full.chunkSize % 4 !== 0) throw new Error(`handle store chunkSize must be a multiple of 4, got ${full.chunkSize}`);
  const { heapByte } = layout(full.handles, full.chunks, full.readers);
  const memory = new SharedArrayBuffer(heapByte + full.chunks * full.chunkSize);
  const header = new Int32Array(memory, 0, headerInts);
  header[H_HANDLES] = full.handles;
  header[H_CHUNKS] = full.chunks;
  header[H_CHUNK_SIZE] = full.chunkSize;
  header[H_READERS] = full.readers;
  header[H_HANDLES_PER_READER] = full.handlesPerReader;
  header[H_CHUNKS_PER_READER] = full.chunksPerReader;
  header[H_OPENER_ENTRIES] = Math.min(initialOpenerEntries, openerEntriesFor(full.handles));
  return memory;
}

/**
 * The parts of the store's memory that can differ from zero (handle slots and chunks ever
 * used, the reader table): a successor process rebuilds the store from them over zeroed
 * memory of the same size (a handover of the /dev/fuse connection).
 */
export function handleStoreLiveRanges(memory: SharedArrayBuffer): Array<readonly [start: number, end: number]> {
  const header = new Int32Array(memory, 0, headerInts);
  const at = layout(header[H_HANDLES], header[H_CHUNKS], header[H_READERS]);
  const usedChunks = header[H_NEXT_UNUSED_CHUNK];
  return [
    [0, 4 * (at.slotsAt + header[H_NEXT_UNUSED_HANDLE] * stride)],
    // The reader table and the opener index are hashed, so used entries are anywhere in them.
    ...nonZeroPages(memory, 4 * at.readersAt, 4 * at.chunkNextAt),
    [4 * at.chunkNextAt, 4 * (at.chunkNextAt + usedChunks)],
    [at.heapByte, at.heapByte + usedChunks * header[H_CHUNK_SIZE]],
  ];
}

/** The 4 KiB pages of [start, end) holding anything but zeros, merged into ranges. */
function nonZeroPages(memory: SharedArrayBuffer, start: number, end: number): Array<readonly [number, number]> {
  const ints = new Int32Array(memory, start, (end - start) / 4);
  const ranges: Array<[number, number]> = [];
  for (let page = 0; page < ints.length; page += 1024) {
    const pageEnd = Math.min(page + 1024, ints.length);
    let used = false;
    for (let i = page; i < pageEnd && !used; i++) used = ints[i] !== 0;
    if (!used) continue;
    const last = ranges.at(-1);
    if (last !== undefined && last[1] === start + 4 * page) last[1] = start + 4 * pageEnd;
    else ranges.push([start + 4 * page, start + 4 * pageEnd]);
  }
  return ranges;
}

/** Who a handle belongs to: the reading cgroup it is charged to, and the file and process it was opened for. */
export interface HandleOwner {
  /** Names the reading cgroup (e.g. the opener's /proc/<pid>/cgroup); handles with equal names share one bound. */
  reader: string;
  nodeId: number;
  pid: number;
}

/** Handles opened without an owner (tests, tools) share one reader and belong to no process. */
const unattributed: HandleOwner = { reader: "unattributed", nodeId: 0, pid: 0 };

/** An open refused because the reading cgroup holds its bound: EMFILE (handles) or ENOMEM (content). */
export class ReaderBoundError extends FsError {
  readonly bound: "handles" | "content";
  readonly limit: number;
  /** True for the first refusal of this reader in ten minutes: the one to log. */
  readonly worthLogging: boolean;

  constructor(bound: "handles" | "content", limit: number, worthLogging: boolean) {
    super(bound === "handles" ? errno.EMFILE : errno.ENOMEM, `the reading cgroup holds its bound of ${limit} open ${bound === "handles" ? "views" : "content chunks"}`);
    this.bound = bound;
    this.limit = limit;
    this.worthLogging = worthLogging;
  }
}

/** The store itself is full (every reader together): ENFILE, as for a full system file table. */
export class StoreFullError extends FsError {
  readonly worthLogging: boolean;

  constructor(errnoValue: number, message: string, worthLogging: boolean) {
    super(errnoValue, message);
    this.worthLogging = worthLogging;
  }
}

export class HandleStore {
  readonly #header: Int32Array;
  readonly #slots: Int32Array;
  readonly #readers: Int32Array;
  readonly #openers: Int32Array;
  readonly #maxOpenerEntries: number;
  readonly #chunkNext: Int32Array;
  readonly #heap: Uint8Array;
  readonly #lock: SharedLock;
  readonly #handles: number;
  readonly #chunkSize: number;
  readonly #readerCount: number;
  readonly #now: () => number;

  constructor(memory: SharedArrayBuffer, options: { now?: () => number } = {}) {
    this.#header = new Int32Array(memory, 0, headerInts);
    this.#handles = this.#header[H_HANDLES];
    const chunks = this.#header[H_CHUNKS];
    this.#chunkSize = this.#header[H_CHUNK_SIZE];
    this.#readerCount = this.#header[H_READERS];
    const at = layout(this.#handles, chunks, this.#readerCount);
    this.#slots = new Int32Array(memory, 4 * at.slotsAt, this.#handles * stride);
    this.#readers = new Int32Array(memory, 4 * at.readersAt, this.#readerCount * readerStride);
    this.#openers = new Int32Array(memory, 4 * at.openersAt, at.openerEntries * openerStride);
    this.#maxOpenerEntries = at.openerEntries;
    this.#chunkNext = new Int32Array(memory, 4 * at.chunkNextAt, chunks);
    this.#heap = new Uint8Array(memory, at.heapByte, chunks * this.#chunkSize);
    this.#lock = new SharedLock(this.#header, H_LOCK);
    this.#now = options.now ?? Date.now;
  }

  /** Stores a rendering and returns its handle (always > 0), charged to `owner.reader` (one shared bound without an owner). */
  open(content: Uint8Array, owner: HandleOwner = unattributed): number {
    return this.#lock.withLock(() => {
      const reader = this.#takeReader(owner.reader);
      const base = reader * readerStride;
      if (this.#readers[base + R_HANDLES] >= this.#header[H_HANDLES_PER_READER]) {
        throw new ReaderBoundError("handles", this.#header[H_HANDLES_PER_READER], this.#logDue(base + R_LOGGED));
      }
      const slot = this.#takeHandle();
      const at = slot * stride;
      this.#slots[at + F_READER] = reader;
      this.#slots[at + F_NODE] = owner.nodeId;
      this.#slots[at + F_PID] = owner.pid;
      this.#slots[at + F_CHUNK_COUNT] = 0;
      this.#readers[base + R_HANDLES]++;
      try {
        this.#store(slot, content);
      } catch (err) {
        this.#readers[base + R_HANDLES]--;
        this.#giveHandle(slot);
        throw err;
      }
      this.#addOpener(owner.nodeId, owner.pid, slot);
      return this.#slots[at + F_GENERATION] * this.#handles + slot;
    });
  }

  /**
   * Whether the handle's content was read since it was stored: a read from offset 0 then
   * starts a new pass over a new rendering, as seq_file does. undefined for a handle that is not open.
   */
  readSinceStored(handle: number): boolean | undefined {
    return this.#lock.withLock(() => {
      const slot = this.#liveSlot(handle);
      return slot === undefined ? undefined : this.#slots[slot * stride + F_UNREAD] === 0;
    });
  }

  /**
   * Swaps the handle's content for a new rendering; false if it is not open. On failure
   * (the reader's bound or the heap is full) the old content stays.
   */
  replace(handle: number, content: Uint8Array): boolean {
    return this.#lock.withLock(() => {
      const slot = this.#liveSlot(handle);
      if (slot === undefined) return false;
      const at = slot * stride;
      const oldFirst = this.#slots[at + F_FIRST_CHUNK];
      const oldCount = this.#slots[at + F_CHUNK_COUNT];
      this.#store(slot, content, oldCount);
      this.#giveChain(oldFirst, this.#slots[at + F_READER], oldCount);
      return true;
    });
  }

  /** Up to `size` bytes from `offset`; undefined for a handle that is not open. */
  read(handle: number, offset: number, size: number): Uint8Array | undefined {
    return this.#lock.withLock(() => {
      const slot = this.#liveSlot(handle);
      if (slot === undefined) return undefined;
      this.#slots[slot * stride + F_UNREAD] = 0;
      const length = this.#slots[slot * stride + F_LENGTH];
      const start = Math.min(offset, length);
      const out = new Uint8Array(Math.max(0, Math.min(size, length - start)));
      let chunk = this.#slots[slot * stride + F_FIRST_CHUNK];
      for (let skipped = 0; skipped + this.#chunkSize <= start; skipped += this.#chunkSize) chunk = this.#chunkNext[chunk];
      let copied = 0;
      let within = start % this.#chunkSize;
      while (copied < out.byteLength) {
        const take = Math.min(this.#chunkSize - within, out.byteLength - copied);
        const from = chunk * this.#chunkSize + within;
        out.set(this.#heap.subarray(from, from + take), copied);
        copied += take;
        within = 0;
        chunk = this.#chunkNext[chunk];
      }
      return out;
    });
  }

  /** Frees the handle and its content; false if it was not open. */
  release(handle: number): boolean {
    return this.#lock.withLock(() => {
      const slot = this.#liveSlot(handle);
      if (slot === undefined) return false;
      const at = slot * stride;
      const reader = this.#slots[at + F_READER];
      this.#giveChain(this.#slots[at + F_FIRST_CHUNK], reader, this.#slots[at + F_CHUNK_COUNT]);
      this.#readers[reader * readerStride + R_HANDLES]--;
      this.#removeOpener(this.#slots[at + F_NODE], this.#slots[at + F_PID], slot);
      this.#giveHandle(slot);
      return true;
    });
  }

  /**
   * The length of the rendering process `pid` holds open for node `nodeId` (its latest
   * open's, if several), undefined when it holds none: what fstat(2) on that open view reports.
   */
  renderingLength(nodeId: number, pid: number): number | undefined {
    return this.#lock.withLock(() => {
      const entry = this.#findOpener(nodeId, pid);
      if (entry === undefined) return undefined;
      const at = entry * openerStride;
      if (this.#openers[at + O_LATEST] === 0) {
        // The latest of several was released: find another of the pair (the rare, slow case).
        for (let slot = 0; slot < this.#header[H_NEXT_UNUSED_HANDLE]; slot++) {
          const base = slot * stride;
          if (this.#slots[base + F_OPEN] === 1 && this.#slots[base + F_NODE] === nodeId && this.#slots[base + F_PID] === pid) {
            this.#openers[at + O_LATEST] = slot + 1;
            break;
          }
        }
      }
      return this.#slots[(this.#openers[at + O_LATEST] - 1) * stride + F_LENGTH];
    });
  }

  /** Handles currently open. */
  get openCount(): number {
    return this.#lock.withLock(() => {
      let open = 0;
      for (let slot = 0; slot < this.#header[H_NEXT_UNUSED_HANDLE]; slot++) open += this.#slots[slot * stride + F_OPEN];
      return open;
    });
  }

  /** Handles and content chunks charged to a reader now. */
  usageOf(reader: string): { handles: number; chunks: number } {
    return this.#lock.withLock(() => {
      const slot = this.#findReader(reader);
      if (slot === undefined) return { handles: 0, chunks: 0 };
      return { handles: this.#readers[slot * readerStride + R_HANDLES], chunks: this.#readers[slot * readerStride + R_CHUNKS] };
    });
  }

  #liveSlot(handle: number): number | undefined {
    if (!Number.isSafeInteger(handle) || handle <= 0) return undefined;
    const slot = handle % this.#handles;
    const generation = Math.floor(handle / this.#handles);
    const at = slot * stride;
    if (this.#slots[at + F_OPEN] !== 1 || this.#slots[at + F_GENERATION] !== generation) return undefined;
    return slot;
  }

  /** The reader's slot, found or made; a reader without handles frees its slot for others (but keeps its log time while it lasts). */
  #takeReader(key: string): number {
    const [hashA, hashB] = hashKey(key);
    let reusable: number | undefined;
    for (let probe = 0; probe < this.#readerCount; probe++) {
      const slot = (hashA + probe) % this.#readerCount;
      const base = slot * readerStride;
      if (this.#readers[base + R_STATE] !== readerInUse) {
        reusable ??= slot;
        break;
      }
      if (this.#readers[base + R_HASH_A] === hashA && this.#readers[base + R_HASH_B] === hashB) return slot;
      if (reusable === undefined && this.#idleReader(base)) reusable = slot;
    }
    if (reusable === undefined) {
      throw new StoreFullError(errno.ENFILE, `all ${this.#readerCount} reader slots hold open handles`, this.#logDue(H_FULL_LOGGED, this.#header));
    }
    const base = reusable * readerStride;
    this.#readers.fill(0, base, base + readerStride);
    this.#readers[base + R_STATE] = readerInUse;
    this.#readers[base + R_HASH_A] = hashA;
    this.#readers[base + R_HASH_B] = hashB;
    return reusable;
  }

  #findReader(key: string): number | undefined {
    const [hashA, hashB] = hashKey(key);
    for (let probe = 0; probe < this.#readerCount; probe++) {
      const base = ((hashA + probe) % this.#readerCount) * readerStride;
      if (this.#readers[base + R_STATE] !== readerInUse) return undefined;
      if (this.#readers[base + R_HASH_A] === hashA && this.#readers[base + R_HASH_B] === hashB) return base / readerStride;
    }
    return undefined;
  }

  /** Holds nothing and was not refused lately: its slot can go to another reader. */
  #idleReader(base: number): boolean {
    return this.#readers[base + R_HANDLES] === 0 && this.#readers[base + R_CHUNKS] === 0 && this.#minute() - this.#readers[base + R_LOGGED] >= logEveryMinutes;
  }

  /** True at most once per ten minutes for the minute stamp at `cells[index]`, which it updates. */
  #logDue(index: number, cells: Int32Array = this.#readers): boolean {
    const minute = this.#minute();
    if (cells[index] !== 0 && minute - cells[index] < logEveryMinutes) return false;
    cells[index] = minute;
    return true;
  }

  #minute(): number {
    return Math.floor(this.#now() / 60_000);
  }

  /** The index's entries in use minus one (they are a power of two), read under the lock: another thread may have grown it. */
  #openerMask(): number {
    return this.#header[H_OPENER_ENTRIES] - 1;
  }

  #openerHome(nodeId: number, pid: number, mask: number): number {
    return (Math.imul(nodeId, 0x9e3779b1) ^ Math.imul(pid, 0x85ebca6b)) & mask;
  }

  #findOpener(nodeId: number, pid: number): number | undefined {
    const mask = this.#openerMask();
    for (let entry = this.#openerHome(nodeId, pid, mask); ; entry = (entry + 1) & mask) {
      const at = entry * openerStride;
      if (this.#openers[at + O_COUNT] === 0) return undefined;
      if (this.#openers[at + O_NODE] === nodeId && this.#openers[at + O_PID] === pid) return entry;
    }
  }

  #addOpener(nodeId: number, pid: number, slot: number): void {
    let entry = this.#findOpener(nodeId, pid);
    if (entry === undefined) {
      const mask = this.#openerMask();
      // Never full: it grows to at most twice as many entries as there are handles.
      if (2 * (this.#header[H_OPENER_PAIRS] + 1) > mask + 1 && mask + 1 < this.#maxOpenerEntries) this.#growOpeners(2 * (mask + 1));
      entry = this.#freeOpenerEntry(nodeId, pid);
      this.#header[H_OPENER_PAIRS]++;
    }
    const at = entry * openerStride;
    this.#openers[at + O_NODE] = nodeId;
    this.#openers[at + O_PID] = pid;
    this.#openers[at + O_COUNT]++;
    this.#openers[at + O_LATEST] = slot + 1;
  }

  #removeOpener(nodeId: number, pid: number, slot: number): void {
    const found = this.#findOpener(nodeId, pid);
    if (found === undefined) return;
    let hole = found;
    const at = hole * openerStride;
    if (--this.#openers[at + O_COUNT] > 0) {
      if (this.#openers[at + O_LATEST] === slot + 1) this.#openers[at + O_LATEST] = 0;
      return;
    }
    this.#header[H_OPENER_PAIRS]--;
    // Backward shift: pull later entries of the probe run into the hole where their home allows.
    const mask = this.#openerMask();
    for (let next = (hole + 1) & mask; this.#openers[next * openerStride + O_COUNT] !== 0; next = (next + 1) & mask) {
      const nextAt = next * openerStride;
      const home = this.#openerHome(this.#openers[nextAt + O_NODE], this.#openers[nextAt + O_PID], mask);
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (stays) continue;
      this.#openers.copyWithin(hole * openerStride, nextAt, nextAt + openerStride);
      hole = next;
    }
    this.#openers.fill(0, hole * openerStride, (hole + 1) * openerStride);
  }

  /** The first empty entry of the pair's probe run, in the index as it is now. */
  #freeOpenerEntry(nodeId: number, pid: number): number {
    const mask = this.#openerMask();
    let entry = this.#openerHome(nodeId, pid, mask);
    while (this.#openers[entry * openerStride + O_COUNT] !== 0) entry = (entry + 1) & mask;
    return entry;
  }

  /** Rehashes every pair into an index of `entries`, which covers the old one and what follows it. */
  #growOpeners(entries: number): void {
    const oldLength = (this.#openerMask() + 1) * openerStride;
    const old = this.#openers.slice(0, oldLength);
    this.#openers.fill(0, 0, oldLength);
    this.#header[H_OPENER_ENTRIES] = entries;
    for (let at = 0; at < oldLength; at += openerStride) {
      if (old[at + O_COUNT] === 0) continue;
      this.#openers.set(old.subarray(at, at + openerStride), this.#freeOpenerEntry(old[at + O_NODE], old[at + O_PID]) * openerStride);
    }
  }

  #takeHandle(): number {
    let slot: number;
    if (this.#header[H_FREE_HANDLE] !== 0) {
      slot = this.#header[H_FREE_HANDLE] - 1;
      this.#header[H_FREE_HANDLE] = this.#slots[slot * stride + F_NEXT_FREE];
    } else {
      slot = this.#header[H_NEXT_UNUSED_HANDLE];
      if (slot >= this.#handles) {
        throw new StoreFullError(errno.ENFILE, `all ${this.#handles} file handles are open`, this.#logDue(H_FULL_LOGGED, this.#header));
      }
      this.#header[H_NEXT_UNUSED_HANDLE] = slot + 1;
    }
    const at = slot * stride;
    // A new generation per use keeps every handle number unique and above 0.
    this.#slots[at + F_GENERATION] = (this.#slots[at + F_GENERATION] % maxGeneration) + 1;
    this.#slots[at + F_OPEN] = 1;
    this.#slots[at + F_FIRST_CHUNK] = noChunk;
    return slot;
  }

  #giveHandle(slot: number): void {
    const at = slot * stride;
    this.#slots[at + F_OPEN] = 0;
    this.#slots[at + F_NEXT_FREE] = this.#header[H_FREE_HANDLE];
    this.#header[H_FREE_HANDLE] = slot + 1;
  }

  /**
   * Copies `content` into new chunks charged to the slot's reader and points the slot at
   * them, marked unread; takes nothing on failure. `releasing` chunks of the slot are about
   * to be given back, so they do not count against the reader's bound.
   */
  #store(slot: number, content: Uint8Array, releasing = 0): void {
    const at = slot * stride;
    const readerBase = this.#slots[at + F_READER] * readerStride;
    const needed = Math.ceil(content.byteLength / this.#chunkSize);
    const bound = this.#header[H_CHUNKS_PER_READER];
    if (this.#readers[readerBase + R_CHUNKS] - releasing + needed > bound) {
      throw new ReaderBoundError("content", bound, this.#logDue(readerBase + R_LOGGED));
    }
    const chunks: number[] = [];
    try {
      for (let i = 0; i < needed; i++) chunks.push(this.#takeChunk());
    } catch (err) {
      for (const chunk of chunks) this.#giveChunk(chunk);
      throw err;
    }
    chunks.forEach((chunk, i) => {
      this.#heap.set(content.subarray(i * this.#chunkSize, (i + 1) * this.#chunkSize), chunk * this.#chunkSize);
      this.#chunkNext[chunk] = i + 1 < chunks.length ? chunks[i + 1] : noChunk;
    });
    this.#readers[readerBase + R_CHUNKS] += needed;
    this.#slots[at + F_FIRST_CHUNK] = chunks.length > 0 ? chunks[0] : noChunk;
    this.#slots[at + F_CHUNK_COUNT] = needed;
    this.#slots[at + F_LENGTH] = content.byteLength;
    this.#slots[at + F_UNREAD] = 1;
  }

  #giveChain(first: number, reader: number, count: number): void {
    for (let chunk = first; chunk !== noChunk; ) {
      const next = this.#chunkNext[chunk];
      this.#giveChunk(chunk);
      chunk = next;
    }
    this.#readers[reader * readerStride + R_CHUNKS] -= count;
  }

  #takeChunk(): number {
    if (this.#header[H_FREE_CHUNK] !== 0) {
      const chunk = this.#header[H_FREE_CHUNK] - 1;
      this.#header[H_FREE_CHUNK] = this.#chunkNext[chunk];
      return chunk;
    }
    const chunk = this.#header[H_NEXT_UNUSED_CHUNK];
    if (chunk >= this.#header[H_CHUNKS]) {
      throw new StoreFullError(errno.ENOMEM, "open file contents fill the shared heap", this.#logDue(H_FULL_LOGGED, this.#header));
    }
    this.#header[H_NEXT_UNUSED_CHUNK] = chunk + 1;
    return chunk;
  }

  #giveChunk(chunk: number): void {
    this.#chunkNext[chunk] = this.#header[H_FREE_CHUNK];
    this.#header[H_FREE_CHUNK] = chunk + 1;
  }
}

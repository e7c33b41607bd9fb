/**
 * Open file and directory handles with the content snapshot each was opened with,
 * shared by every worker thread: OPEN may reach one worker and the READs another.
 *
 * Content lives in a shared heap of fixed-size chunks chained per handle, so no
 * worker needs another's memory and a successor loop on the same fd can take the
 * store over whole. Handles carry a generation so a stale one answers EBADF instead
 * of someone else's content. Untouched heap memory is never committed, so the default
 * capacity costs address space, not RAM.
 */

import { FsError, errno } from "../node.ts";
import type { ByteRange } from "./node-table.ts";
import { SharedLock } from "./shared-lock.ts";

const headerInts = 8;
const H_LOCK = 0;
const H_HANDLES = 1;
const H_CHUNKS = 2;
const H_CHUNK_SIZE = 3;
const H_FREE_HANDLE = 4;
const H_FREE_CHUNK = 5;
const H_NEXT_UNUSED_HANDLE = 6;
const H_NEXT_UNUSED_CHUNK = 7;

const stride = 4;
const F_GENERATION = 0;
/** First chunk of the content, -1 for none; -2 marks a free handle. */
const F_FIRST_CHUNK = 1;
const F_LENGTH = 2;
const F_NEXT_FREE = 3;

const noChunk = -1;
const freeHandle = -2;

export interface HandleStoreSize {
  handles: number;
  chunks: number;
  chunkSize: number;
}

export const defaultHandleStoreSize: HandleStoreSize = { handles: 1 << 14, chunks: 1 << 14, chunkSize: 4096 };

export function createHandleStoreMemory(size: HandleStoreSize = defaultHandleStoreSize): SharedArrayBuffer {
  const { handles, chunks, chunkSize } = size;
  for (const [name, value] of Object.entries(size)) {
    if (!Number.isInteger(value) || value < 1 || value > 2 ** 20) throw new Error(`handle store ${name} must be an integer in 1..${2 ** 20}, got ${value}`);
  }
  if (chunkSize % 4 !== 0) throw new Error(`handle store chunkSize must be a multiple of 4, got ${chunkSize}`);
  const memory = new SharedArrayBuffer(4 * (headerInts + handles * stride + chunks) + chunks * chunkSize);
  const header = new Int32Array(memory, 0, headerInts);
  header[H_HANDLES] = handles;
  header[H_CHUNKS] = chunks;
  header[H_CHUNK_SIZE] = chunkSize;
  header[H_FREE_HANDLE] = -1;
  header[H_FREE_CHUNK] = -1;
  const slots = new Int32Array(memory, 4 * headerInts, handles * stride);
  for (let slot = 0; slot < handles; slot++) slots[slot * stride + F_FIRST_CHUNK] = freeHandle;
  return memory;
}

/**
 * The parts of the store's memory that can differ from zero (every handle slot, the
 * chunks ever used): a successor rebuilds the store from them over zeroed memory.
 */
export function handleStoreLiveRanges(memory: SharedArrayBuffer): ByteRange[] {
  const header = new Int32Array(memory, 0, headerInts);
  const chunkNextStart = 4 * (headerInts + header[H_HANDLES] * stride);
  const heapStart = chunkNextStart + 4 * header[H_CHUNKS];
  const usedChunks = header[H_NEXT_UNUSED_CHUNK];
  return [
    [0, chunkNextStart + 4 * usedChunks],
    [heapStart, heapStart + usedChunks * header[H_CHUNK_SIZE]],
  ];
}

export class HandleStore {
  readonly #header: Int32Array;
  readonly #slots: Int32Array;
  readonly #chunkNext: Int32Array;
  readonly #heap: Uint8Array;
  readonly #lock: SharedLock;
  readonly #handles: number;
  readonly #chunkSize: number;

  constructor(memory: SharedArrayBuffer) {
    this.#header = new Int32Array(memory, 0, headerInts);
    this.#handles = this.#header[H_HANDLES];
    const chunks = this.#header[H_CHUNKS];
    this.#chunkSize = this.#header[H_CHUNK_SIZE];
    this.#slots = new Int32Array(memory, 4 * headerInts, this.#handles * stride);
    this.#chunkNext = new Int32Array(memory, 4 * (headerInts + this.#handles * stride), chunks);
    this.#heap = new Uint8Array(memory, 4 * (headerInts + this.#handles * stride + chunks), chunks * this.#chunkSize);
    this.#lock = new SharedLock(this.#header, H_LOCK);
  }

  /** Stores a snapshot and returns its handle (always > 0). */
  open(content: Uint8Array): number {
    return this.#lock.withLock(() => {
      const slot = this.#takeHandle();
      const chunks: number[] = [];
      try {
        for (let at = 0; at < content.byteLength; at += this.#chunkSize) chunks.push(this.#takeChunk());
      } catch (err) {
        for (const chunk of chunks) this.#giveChunk(chunk);
        this.#giveHandle(slot);
        throw err;
      }
      chunks.forEach((chunk, i) => {
        this.#heap.set(content.subarray(i * this.#chunkSize, (i + 1) * this.#chunkSize), chunk * this.#chunkSize);
        this.#chunkNext[chunk] = i + 1 < chunks.length ? chunks[i + 1] : noChunk;
      });
      const at = slot * stride;
      this.#slots[at + F_FIRST_CHUNK] = chunks.length > 0 ? chunks[0] : noChunk;
      this.#slots[at + F_LENGTH] = content.byteLength;
      return this.#slots[at + F_GENERATION] * this.#handles + slot;
    });
  }

  /** Up to `size` bytes from `offset`; undefined for a handle that is not open. */
  read(handle: number, offset: number, size: number): Uint8Array | undefined {
    return this.#lock.withLock(() => {
      const slot = this.#liveSlot(handle);
      if (slot === undefined) return undefined;
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
      for (let chunk = this.#slots[slot * stride + F_FIRST_CHUNK]; chunk !== noChunk; ) {
        const next = this.#chunkNext[chunk];
        this.#giveChunk(chunk);
        chunk = next;
      }
      this.#giveHandle(slot);
      return true;
    });
  }

  /** Handles currently open. */
  get openCount(): number {
    return this.#lock.withLock(() => {
      let open = 0;
      for (let slot = 0; slot < this.#header[H_NEXT_UNUSED_HANDLE]; slot++) {
        if (this.#slots[slot * stride + F_FIRST_CHUNK] !== freeHandle) open++;
      }
      return open;
    });
  }

  #liveSlot(handle: number): number | undefined {
    if (!Number.isSafeInteger(handle) || handle <= 0) return undefined;
    const slot = handle % this.#handles;
    const generation = Math.floor(handle / this.#handles);
    const at = slot * stride;
    if (this.#slots[at + F_FIRST_CHUNK] === freeHandle || this.#slots[at + F_GENERATION] !== generation) return undefined;
    return slot;
  }

  #takeHandle(): number {
    let slot = this.#header[H_FREE_HANDLE];
    if (slot !== -1) {
      this.#header[H_FREE_HANDLE] = this.#slots[slot * stride + F_NEXT_FREE];
    } else {
      slot = this.#header[H_NEXT_UNUSED_HANDLE];
      if (slot >= this.#handles) throw new FsError(errno.ENFILE, `all ${this.#handles} file handles are open`);
      this.#header[H_NEXT_UNUSED_HANDLE] = slot + 1;
    }
    // A new generation per use keeps every handle number unique and above 0.
    this.#slots[slot * stride + F_GENERATION]++;
    this.#slots[slot * stride + F_FIRST_CHUNK] = noChunk;
    return slot;
  }

  #giveHandle(slot: number): void {
    const at = slot * stride;
    this.#slots[at + F_FIRST_CHUNK] = freeHandle;
    this.#slots[at + F_NEXT_FREE] = this.#header[H_FREE_HANDLE];
    this.#header[H_FREE_HANDLE] = slot;
  }

  #takeChunk(): number {
    let chunk = this.#header[H_FREE_CHUNK];
    if (chunk !== -1) {
      this.#header[H_FREE_CHUNK] = this.#chunkNext[chunk];
      return chunk;
    }
    chunk = this.#header[H_NEXT_UNUSED_CHUNK];
    if (chunk >= this.#header[H_CHUNKS]) throw new FsError(errno.ENOMEM, "open file contents fill the shared heap");
    this.#header[H_NEXT_UNUSED_CHUNK] = chunk + 1;
    return chunk;
  }

  #giveChunk(chunk: number): void {
    this.#chunkNext[chunk] = this.#header[H_FREE_CHUNK];
    this.#header[H_FREE_CHUNK] = chunk;
  }
}

/**
 * How long the kernel knows each file to be, at least, on a connection whose every reply
 * and every store one thread sends (main-thread-loop.ts). The size matters to sendfile(2)
 * and splice(2) readers, which read through the page cache up to it, and to readers that
 * read as much as fstat(2) says (Node's readFileSync); an OPEN's one-byte store grows it
 * to the rendering's length (session.ts). When the kernel already holds a size at least
 * that long, the store changes nothing, and on the main thread it costs a trip through
 * the thread pool before the OPEN's reply (deferred-writes.ts): served without stores,
 * the main thread alone read 1.6x LXCFS where with a store at every open 0.97x
 * (bench/views.ts, all views).
 *
 * The kernel's size grows only by a store, and shrinks only by a reply this thread sends:
 * attributes (a LOOKUP's or GETATTR's size replaces it) or a page read's READ shorter
 * than asked (the kernel ends the file there). So a written store raises the floor to
 * its end, unless such a reply went out after the store was queued (it may have landed
 * after the store); each such reply lowers the floor to its size. Worker threads, which
 * send replies concurrently, store at every open.
 *
 * A direct read's short READ (read(2) on a direct_io file: every reader but sendfile's)
 * leaves the size alone, and most of them can be told from page reads: the kernel reads
 * pages whole, from a page boundary, and never past the page that holds its size, which
 * is at most the largest size it may have been told (the ceiling). Without that, each
 * `cat` lowered the floor to its rendering's length and the next longer rendering (stat's
 * counters grow) stored again. A file whose inode the kernel held before this thread
 * served (a handed-over connection) has no known ceiling: its every aligned short READ
 * counts as a page read.
 */

/** Divides every page and folio size: a page read starts and ends on a multiple of it. */
export const pageAlignment = 4096;

interface QueuedStore {
  nodeId: number;
  end: number;
  /** The node's shrinking replies sent when the store was queued. */
  shrinks: number;
}

export class KnownSizes {
  readonly #floors = new Map<number, number>();
  readonly #ceilings = new Map<number, number>();
  readonly #shrinks = new Map<number, number>();
  readonly #queued = new WeakMap<Uint8Array, QueuedStore>();

  /** Whether a rendering of `length` bytes needs a store: the kernel may know the file shorter. */
  needsStore(nodeId: number, length: number): boolean {
    return length > (this.#floors.get(nodeId) ?? 0);
  }

  /** The kernel is about to get its first inode for `nodeId` (a LOOKUP's reply): it holds no size for it before. */
  created(nodeId: number): void {
    this.#ceilings.set(nodeId, 0);
  }

  /** `store`, which makes the kernel's size of `nodeId` at least `end`, is about to be written. */
  queued(store: Uint8Array, nodeId: number, end: number): void {
    this.#raiseCeiling(nodeId, end);
    this.#queued.set(store, { nodeId, end, shrinks: this.#shrinks.get(nodeId) ?? 0 });
  }

  /** `store` was written (and taken: a rejected one is not reported). */
  written(store: Uint8Array): void {
    const queued = this.#queued.get(store);
    if (queued === undefined) return;
    this.#queued.delete(store);
    if ((this.#shrinks.get(queued.nodeId) ?? 0) !== queued.shrinks) return;
    this.#floors.set(queued.nodeId, Math.max(this.#floors.get(queued.nodeId) ?? 0, queued.end));
  }

  /** Attributes about to go out (a LOOKUP's or GETATTR's reply): the kernel's size of `nodeId` may become `size`. */
  attributes(nodeId: number, size: number): void {
    this.#raiseCeiling(nodeId, size);
    this.#shrink(nodeId, size);
  }

  /** A READ's reply about to go out: `returned` of the `asked` bytes at `offset`. */
  read(nodeId: number, offset: number, asked: number, returned: number): void {
    if (returned < asked && this.#mayBePageRead(nodeId, offset, asked)) this.#shrink(nodeId, offset + returned);
  }

  /** The kernel let go of `nodeId`: a node reusing the id starts from nothing known. */
  forget(nodeId: number): void {
    this.#floors.delete(nodeId);
    this.#ceilings.delete(nodeId);
    this.#shrinks.delete(nodeId);
  }

  #mayBePageRead(nodeId: number, offset: number, asked: number): boolean {
    if (offset % pageAlignment !== 0 || asked % pageAlignment !== 0) return false;
    const ceiling = this.#ceilings.get(nodeId);
    return ceiling === undefined || offset + asked <= Math.ceil(ceiling / pageAlignment) * pageAlignment;
  }

  #raiseCeiling(nodeId: number, size: number): void {
    const ceiling = this.#ceilings.get(nodeId);
    if (ceiling !== undefined && size > ceiling) this.#ceilings.set(nodeId, size);
  }

  #shrink(nodeId: number, size: number): void {
    const floor = this.#floors.get(nodeId);
    if (floor !== undefined && size < floor) this.#floors.set(nodeId, size);
    this.#shrinks.set(nodeId, (this.#shrinks.get(nodeId) ?? 0) + 1);
  }
}

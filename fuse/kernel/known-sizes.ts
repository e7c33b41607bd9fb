/**
 * How long the kernel knows each file to be, at least, on a connection whose every reply
 * and every store one thread sends (main-thread-loop.ts). The size matters to sendfile(2)
 * and splice(2) readers only, which read through the page cache up to it; an OPEN's
 * one-byte store grows it to the rendering's length (session.ts). When the kernel already
 * holds a size at least that long, the store changes nothing, and on the main thread it
 * costs a trip through the thread pool before the OPEN's reply (deferred-writes.ts):
 * served without stores, the main thread alone read 1.6x LXCFS where with a store at
 * every open 0.97x (bench/views.ts, all views).
 *
 * The kernel's size grows only by a store, and shrinks only by a reply this thread sends:
 * attributes (a LOOKUP's or GETATTR's size replaces it) or a READ shorter than asked (a
 * page read ends the file there; a direct read does not, but cannot be told apart). So a
 * written store raises the floor to its end, unless such a reply went out after the store
 * was queued (it may have landed after the store); each such reply lowers the floor to
 * its size. Worker threads, which send replies concurrently, store at every open.
 */

interface QueuedStore {
  nodeId: number;
  end: number;
  /** The node's shrinking replies sent when the store was queued. */
  shrinks: number;
}

export class KnownSizes {
  readonly #floors = new Map<number, number>();
  readonly #shrinks = new Map<number, number>();
  readonly #queued = new WeakMap<Uint8Array, QueuedStore>();

  /** Whether a rendering of `length` bytes needs a store: the kernel may know the file shorter. */
  needsStore(nodeId: number, length: number): boolean {
    return length > (this.#floors.get(nodeId) ?? 0);
  }

  /** `store`, which makes the kernel's size of `nodeId` at least `end`, is about to be written. */
  queued(store: Uint8Array, nodeId: number, end: number): void {
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

  /** A reply about to go out that may set the kernel's size of `nodeId` to `size`. */
  mayShrink(nodeId: number, size: number): void {
    const floor = this.#floors.get(nodeId);
    if (floor !== undefined && size < floor) this.#floors.set(nodeId, size);
    this.#shrinks.set(nodeId, (this.#shrinks.get(nodeId) ?? 0) + 1);
  }

  /** The kernel let go of `nodeId`: a node reusing the id starts from nothing known. */
  forget(nodeId: number): void {
    this.#floors.delete(nodeId);
    this.#shrinks.delete(nodeId);
  }
}

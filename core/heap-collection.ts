/**
 * Full V8 collections on a schedule. A serving thread promotes a little of each request's
 * garbage to its old generation, which V8 lets grow to ~2.5 times what is live (6 → 15 MiB
 * a worker here) before it collects, and keeps the pages once it has; the collections that
 * would shrink it (V8's memory reducer) run as tasks of an event loop that a worker blocked
 * in read(2) never turns. A full collection every few seconds of serving keeps the old
 * generation near what is live. It needs the runtime's `gc` (--expose-gc, which
 * bin/procview.js and the single executable give the FUSE server); without it, nothing.
 */

/** Serving time between two collections; one takes 5-16 ms on this busy 2-core machine, on the thread that serves. */
export const heapCollectionIntervalMs = 5_000;

/** How many requests pass between two looks at the clock. */
const requestsPerLook = 1024;

/** The runtime's full collection, if it exposes one. */
export function exposedCollection(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === "function" ? () => gc() : undefined;
}

/** Counts a serving thread's requests and collects once heapCollectionIntervalMs has passed since the last collection. */
export class PeriodicCollection {
  readonly #collect: (() => void) | undefined;
  readonly #now: () => number;
  #requests = 0;
  #last: number;

  constructor(collect = exposedCollection(), now: () => number = () => performance.now()) {
    this.#collect = collect;
    this.#now = now;
    this.#last = now();
  }

  /** After each request; true if it collected. */
  afterRequest(): boolean {
    if (this.#collect === undefined || ++this.#requests % requestsPerLook !== 0) return false;
    const now = this.#now();
    if (now - this.#last < heapCollectionIntervalMs) return false;
    this.#last = now;
    this.#collect();
    return true;
  }
}

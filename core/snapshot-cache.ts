/**
 * A short-lived cache of what a read gathers from many files (a cgroup's thread states,
 * its oldest process), shared by the reads of one serving thread. An entry stays valid for
 * a multiple of the time it took to gather, within bounds: a small container's figures are
 * a few milliseconds old at most, while a container of 1,000 threads, whose walk costs
 * ~20 ms, is walked a few times a second rather than at every read, so its size no longer
 * sets every reader's cost. A re-read of an open handle from offset 0 asks for `fresh`
 * figures, so a program that keeps a view open and re-reads it never sees the last ones again.
 */

export interface SnapshotCacheOptions {
  /** Validity as a multiple of the gathering time: 20 keeps gathering under ~5 % of a busy thread. */
  costMultiple: number;
  minValidMs: number;
  maxValidMs: number;
  /** Entries beyond this drop the least recently gathered. */
  maxEntries: number;
  /** A monotonic clock in ms; performance.now by default. */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  validUntil: number;
}

export const defaultSnapshotCacheOptions: SnapshotCacheOptions = { costMultiple: 20, minValidMs: 0, maxValidMs: 1000, maxEntries: 4096 };

export class SnapshotCache<V> {
  readonly #options: SnapshotCacheOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry<V>>();

  constructor(options: SnapshotCacheOptions = defaultSnapshotCacheOptions) {
    if (!(options.costMultiple >= 0 && options.minValidMs >= 0 && options.maxValidMs >= options.minValidMs && options.maxEntries >= 1)) {
      throw new Error(`invalid snapshot cache options ${JSON.stringify(options)}`);
    }
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value gathered for `key` while still valid (and not `fresh`), else `gather()`'s, remembered. Errors are not remembered. */
  get(key: string, gather: () => V, fresh = false): V {
    const started = this.#now();
    const entry = this.#entries.get(key);
    if (!fresh && entry !== undefined && started < entry.validUntil) return entry.value;
    const value = gather();
    const finished = this.#now();
    const { costMultiple, minValidMs, maxValidMs, maxEntries } = this.#options;
    const validMs = Math.min(maxValidMs, Math.max(minValidMs, (finished - started) * costMultiple));
    // Re-inserted, so the Map's order is the order of gathering: the first entry is the stalest.
    this.#entries.delete(key);
    if (this.#entries.size >= maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { value, validUntil: finished + validMs });
    return value;
  }
}

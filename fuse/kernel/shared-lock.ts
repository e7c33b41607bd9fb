/**
 * A mutex in shared memory, so worker threads serving the same /dev/fuse fd can
 * update the node and handle tables together. Critical sections are a few table
 * operations long, so waiters block on the futex rather than spin.
 */

const unlocked = 0;
const locked = 1;
const lockedWithWaiters = 2;

export class SharedLock {
  readonly #cells: Int32Array;
  readonly #index: number;

  /** `cells[index]` holds the lock word; it must start at 0. */
  constructor(cells: Int32Array, index: number) {
    this.#cells = cells;
    this.#index = index;
  }

  withLock<T>(critical: () => T): T {
    this.#acquire();
    try {
      return critical();
    } finally {
      this.#release();
    }
  }

  #acquire(): void {
    const cells = this.#cells;
    const i = this.#index;
    let state = Atomics.compareExchange(cells, i, unlocked, locked);
    if (state === unlocked) return;
    // Announce a waiter, then sleep until the holder hands the word back.
    if (state !== lockedWithWaiters) state = Atomics.exchange(cells, i, lockedWithWaiters);
    while (state !== unlocked) {
      Atomics.wait(cells, i, lockedWithWaiters);
      state = Atomics.exchange(cells, i, lockedWithWaiters);
    }
  }

  #release(): void {
    if (Atomics.exchange(this.#cells, this.#index, unlocked) === lockedWithWaiters) {
      Atomics.notify(this.#cells, this.#index, 1);
    }
  }
}

/**
 * FUSE_NOTIFY_STORE writes that no serving thread may wait for, each followed by the reply
 * it precedes. The kernel fills the page cache under each page's lock, and a page that a
 * sendfile(2) or mmap(2) reader is reading stays locked until that reader's READ is
 * answered — by a serving thread. A serving thread writing the store itself would wait for
 * a reply only it could send: with one serving thread, two `busybox cat` of one view at
 * once hung the server for good (in uninterruptible sleep, past SIGKILL). So the store goes
 * out on a thread-pool thread while the serving threads answer on, and the reply that must
 * follow it (the OPEN whose size the store sets) is sent once it is written. At most
 * `maxOffThread` are written at once, the rest wait here: stores waiting in the kernel must
 * never take every pool thread, or the main thread's own poll for the READ they wait for
 * would queue behind them.
 */

import type { Logger } from "../../core/log.ts";

export type WriteOffThread = (fd: number, data: Uint8Array) => Promise<boolean>;

/** Half of libuv's default pool of 4. */
const defaultMaxOffThread = 2;

interface Deferred {
  fd: number;
  notifications: readonly Uint8Array[];
  reply: () => void;
}

export class DeferredWrites {
  readonly #writeOffThread: WriteOffThread;
  readonly #logger: Logger;
  readonly #written: (notification: Uint8Array) => void;
  readonly #maxOffThread: number;
  readonly #waiting: Deferred[] = [];
  #writing = 0;
  #whenDrained: (() => void)[] = [];

  /** `written` hears of each notification the kernel took, once it has. */
  constructor(writeOffThread: WriteOffThread, logger: Logger, written: (notification: Uint8Array) => void = () => {}, maxOffThread = defaultMaxOffThread) {
    this.#writeOffThread = writeOffThread;
    this.#logger = logger;
    this.#written = written;
    this.#maxOffThread = maxOffThread;
  }

  /** Replies not sent yet: their notifications are being written or wait their turn. */
  get pending(): number {
    return this.#writing + this.#waiting.length;
  }

  /** Writes `notifications` to `fd` in order, then calls `reply` (on this thread). */
  add(fd: number, notifications: readonly Uint8Array[], reply: () => void): void {
    this.#waiting.push({ fd, notifications, reply });
    this.#next();
  }

  #next(): void {
    while (this.#writing < this.#maxOffThread && this.#waiting.length > 0) {
      const { fd, notifications, reply } = this.#waiting.shift()!;
      this.#writing++;
      void this.#write(fd, notifications, reply).finally(() => {
        this.#writing--;
        this.#next();
        if (this.pending > 0) return;
        for (const resolve of this.#whenDrained.splice(0)) resolve();
      });
    }
  }

  /** Settles once nothing added is pending. */
  drained(): Promise<void> {
    return this.pending === 0 ? Promise.resolve() : new Promise((resolve) => this.#whenDrained.push(resolve));
  }

  async #write(fd: number, notifications: readonly Uint8Array[], reply: () => void): Promise<void> {
    for (const notification of notifications) {
      // Only sendfile and mmap readers need the store (for the file's size): the reply still goes out.
      if (await this.#writeOffThread(fd, notification)) this.#written(notification);
      else this.#logger.debug("FUSE notification rejected by the kernel", { fd });
    }
    try {
      reply();
    } catch (err) {
      this.#logger.error("FUSE reply after a notification failed", { err });
    }
  }
}

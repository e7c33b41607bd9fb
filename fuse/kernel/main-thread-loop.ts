/**
 * Serves a mounted /dev/fuse connection on the process's main thread, with no worker
 * thread at all: each worker is a V8 isolate of its own (~14 MiB of anonymous memory and
 * ~10 MiB more of the node binary's pages resident), which on a small node costs more
 * than the second core it could use brings (see README, Performance).
 *
 * The main thread must never block in read(2): its event loop also runs the loadavg
 * sampler, the metrics endpoint and the handover socket. For the same reason nothing on
 * the main thread may touch the mount synchronously (readFileSync of a view would wait for
 * the very thread it blocks): such code uses node:fs/promises or a worker. So it reads through a clone of
 * the connection's fd (FUSE_DEV_IOC_CLONE) opened non-blocking, drains every queued
 * request in one go, and then waits for the next in a poll(2) on the thread pool. That
 * poll has a short timeout, so no pool thread is ever stuck where it would hold up the
 * process's exit, and the original fd, which a successor takes over, keeps blocking reads.
 * The page-cache stores an OPEN's reply follows go out on the pool too (deferred-writes.ts):
 * this thread is the one that answers the READ a store may wait for. Since it also sends
 * every reply, it knows when the kernel holds a file's size already and leaves the store
 * out (known-sizes.ts), which spares most opens that trip.
 */

import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { Logger } from "../../core/log.ts";
import { sys, syscalls } from "../../core/syscalls.ts";
import { DeferredWrites } from "./deferred-writes.ts";
import { auditedDirectoriesOf, startEntryAudit } from "./entry-audit.ts";
import { KnownSizes } from "./known-sizes.ts";
import { openDeviceIo } from "./device-io.ts";
import type { LoopEnd, RequestLoop, RequestLoopOptions } from "./request-loop.ts";
import { loadTree, readRequest, requestDueSoon, sendReply, servingSession, takeAll, type RequestNotifications } from "./serving.ts";
import { NodeTable } from "./node-table.ts";
import { requestBufferSize } from "./session.ts";

/** Longest a stop (or the process's exit) waits for the pool thread's poll to return. */
const pollTimeoutMs = 200;
/** Requests answered before timers and I/O callbacks get their turn. */
const requestsPerTurn = 64;

export async function startMainThreadLoop(options: RequestLoopOptions & { logger: Logger }): Promise<RequestLoop> {
  const { logger } = options;
  const root = await loadTree(options.treeModule, options.treeOptions);
  const directories = await auditedDirectoriesOf(options.treeModule, options.treeOptions);
  const calls = syscalls();
  const fd = calls.cloneFuseDevice(options.fd, sys.O_NONBLOCK);
  const input = calls.watchInput(fd);
  try {
    await options.beforeServing?.();
  } catch (err) {
    calls.close(fd);
    throw err;
  }
  // Only now are the shared tables final: a successor fills them with its predecessor's state in beforeServing.
  const device = openDeviceIo(fd);
  const notifications: RequestNotifications = { beforeReply: [], afterReply: [] };
  const knownSizes = new KnownSizes();
  const session = servingSession(root, options.state, notifications, logger, knownSizes);
  const deferred = new DeferredWrites(calls.writeOffThread, logger, (store) => knownSizes.written(store));
  const replySent = new Signal();
  const buffer = new Uint8Array(requestBufferSize);
  let stopRequested = false;
  /** Serving on until the deferred replies are out: a store may wait for a READ only this loop answers. */
  const keepServing = (): boolean => !stopRequested || deferred.pending > 0;

  /**
   * Whether a request is queued, looking again for a moment before saying no (serving.ts's
   * spinMs: a wake-up through the pool costs more), but not while a reply waits on the
   * pool: that needs the event loop.
   */
  const awaitsNext = (): boolean => (deferred.pending > 0 ? input.ready() : requestDueSoon(input));

  /**
   * The reply, and the request's stores before or after it, those written off this thread.
   * A stopping loop defers nothing more: it skips them (only a sendfile or mmap reader's
   * idea of the size can then lag).
   */
  const answer = (reply: Uint8Array | undefined): "sent" | "unmounted" => {
    const before = takeAll(notifications.beforeReply);
    const after = takeAll(notifications.afterReply);
    if (stopRequested) return reply === undefined ? "sent" : sendReply(device, reply, logger);
    const sendWithAfter = (): "sent" | "unmounted" => {
      const sent = reply === undefined ? "sent" : sendReply(device, reply, logger);
      if (after.length > 0) deferred.add(fd, after, () => {});
      return sent;
    };
    if (before.length === 0) return sendWithAfter();
    deferred.add(fd, before, () => {
      sendWithAfter();
      replySent.signal();
    });
    return "sent";
  };

  /**
   * Answers what is queued, up to one turn's worth: "idle" when the queue ran dry. A poll
   * comes before each read: an empty non-blocking read costs an exception, a poll does not.
   */
  const answerQueued = (): "idle" | "busy" | "unmounted" => {
    for (let answered = 0; answered < requestsPerTurn && keepServing(); answered++) {
      if (!awaitsNext()) return "idle";
      const length = readRequest(device, buffer);
      if (length === "unmounted") return "unmounted";
      if (length === "empty") return "idle";
      if (length === "again") continue;
      if (answer(session.handle(buffer.subarray(0, length))) === "unmounted") return "unmounted";
    }
    return "busy";
  };

  /** The one poll on the pool at a time: a wait cut short by a deferred reply leaves it running for the next. */
  let polling: Promise<boolean> | undefined;
  const inputOrTimeout = (): Promise<boolean> => (polling ??= input.wait(pollTimeoutMs).finally(() => (polling = undefined)));

  const serve = async (): Promise<LoopEnd> => {
    while (keepServing()) {
      const state = answerQueued();
      if (state === "unmounted") return "unmounted";
      if (state === "busy") await yieldToEventLoop();
      // Once a deferred reply is out its reader's next request is due within microseconds:
      // back to the look in awaitsNext() rather than a wake-up through the pool.
      else await Promise.race([inputOrTimeout(), ...(deferred.pending > 0 ? [replySent.next()] : [])]);
    }
    return "stopped";
  };

  // The notifications go out on the pool: this thread answers the lookups they may wait for.
  const audit = startEntryAudit({ fd: options.fd, nodes: new NodeTable(options.state.nodes), directories, write: calls.writeOffThread, logger });
  const finished = serve()
    .catch((err: unknown): LoopEnd => {
      logger.error("FUSE serving on the main thread failed", { err });
      return "failed";
    })
    .finally(() => {
      void audit.stop();
      calls.close(fd);
    });

  return {
    workers: 0,
    stop: async () => {
      await audit.stop();
      stopRequested = true;
      await finished;
    },
    // Every request read is answered before serve() looks at the flag again, and the pool's poll returns within pollTimeoutMs.
    stopBlocking: () => {
      stopRequested = true;
    },
    finished,
  };
}

/** Wakes whoever awaits next() at the next signal(). */
class Signal {
  #waiters: (() => void)[] = [];

  next(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  signal(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}

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
 */

import { availableParallelism } from "node:os";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { Logger } from "../../core/log.ts";
import { sys, syscalls } from "../../core/syscalls.ts";
import { openDeviceIo } from "./device-io.ts";
import type { LoopEnd, RequestLoop, RequestLoopOptions } from "./request-loop.ts";
import { loadTree, readRequest, sendReply, servingSession } from "./serving.ts";
import { requestBufferSize } from "./session.ts";

/** Longest a stop (or the process's exit) waits for the pool thread's poll to return. */
const pollTimeoutMs = 200;
/** Requests answered before timers and I/O callbacks get their turn. */
const requestsPerTurn = 64;
/**
 * How long an empty queue is looked at again before the wait goes to the thread pool. A
 * reader's next request (the READ after its OPEN, the RELEASE after its last READ) comes
 * within some 10-30 µs, and a wake-up through the pool costs more than that: measured
 * 3,300 vs 7,000 reads/s of meminfo by one reader. With a single CPU the reader needs that
 * very CPU to send it, so there is no spinning.
 */
const spinMs = availableParallelism() > 1 ? 0.05 : 0;

export async function startMainThreadLoop(options: RequestLoopOptions & { logger: Logger }): Promise<RequestLoop> {
  const { logger } = options;
  const root = await loadTree(options.treeModule, options.treeOptions);
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
  const session = servingSession(root, options.state, device, logger);
  const buffer = new Uint8Array(requestBufferSize);
  let stopRequested = false;

  /** Whether a request is queued, looking again for up to spinMs before saying no. */
  const awaitsNext = (): boolean => {
    if (input.ready()) return true;
    const until = performance.now() + spinMs;
    while (performance.now() < until) if (input.ready()) return true;
    return false;
  };

  /**
   * Answers what is queued, up to one turn's worth: "idle" when the queue ran dry. A poll
   * comes before each read: an empty non-blocking read costs an exception, a poll does not.
   */
  const answerQueued = (): "idle" | "busy" | "unmounted" => {
    for (let answered = 0; answered < requestsPerTurn && !stopRequested; answered++) {
      if (!awaitsNext()) return "idle";
      const length = readRequest(device, buffer);
      if (length === "unmounted") return "unmounted";
      if (length === "empty") return "idle";
      if (length === "again") continue;
      const reply = session.handle(buffer.subarray(0, length));
      if (reply !== undefined && sendReply(device, reply, logger) === "unmounted") return "unmounted";
    }
    return "busy";
  };

  const serve = async (): Promise<LoopEnd> => {
    while (!stopRequested) {
      const state = answerQueued();
      if (state === "unmounted") return "unmounted";
      if (state === "busy") await yieldToEventLoop();
      else await input.wait(pollTimeoutMs);
    }
    return "stopped";
  };

  const finished = serve()
    .catch((err: unknown): LoopEnd => {
      logger.error("FUSE serving on the main thread failed", { err });
      return "failed";
    })
    .finally(() => calls.close(fd));

  return {
    workers: 0,
    stop: async () => {
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

/**
 * One serving thread: builds its own copy of the tree, then reads a request from the
 * shared /dev/fuse fd, answers it, and checks for a stop request, until told to stop
 * or the mount goes away. Blocking reads keep a round trip to one syscall each way. After
 * a reply the thread first looks for the next request for a moment (serving.ts's spinMs;
 * one thread at a time, while looking pays), since a sleep in the read and the wake-up
 * cost more than the wait for a reader's next request. Should another thread take the
 * request it saw, its read just blocks.
 */

import { parentPort, workerData } from "node:worker_threads";
import { PeriodicCollection } from "../../core/heap-collection.ts";
import { createLogger } from "../../core/log.ts";
import { syscalls, type InputWatch } from "../../core/syscalls.ts";
import { openDeviceIo, type DeviceIo } from "./device-io.ts";
import { addReader, endSpin, endStore, removeReader, stopRequested, storesOff, tryStartSpin, tryStartStore, waitAtGate, type LoopControl } from "./loop-control.ts";
import { LookingPolicy, loadTree, readRequest, requestDueSoon, sendReply, servingSession, spinMs, takeAll, type RequestNotifications } from "./serving.ts";
import { requestBufferSize, type FuseSession } from "./session.ts";
import type { WorkerData, WorkerReport } from "./request-loop.ts";

const data = workerData as WorkerData;
// Records go to the loop's logger in the main thread, which filters and writes them.
const logger = createLogger({ level: "debug", fields: { worker: data.workerIndex }, write: (line) => report({ type: "log", line }) });

function report(message: WorkerReport): void {
  parentPort!.postMessage(message);
}

type LoopEnd = "stopped" | "unmounted";

/** Serves until stopped or unmounted; counted as a reader from the gate until it decides to leave. */
class ServingThread {
  readonly #control: LoopControl;
  #reading = false;
  readonly #looking = new LookingPolicy();
  readonly #collection = new PeriodicCollection();

  constructor(control: LoopControl) {
    this.#control = control;
  }

  enter(): void {
    addReader(this.#control);
    this.#reading = true;
  }

  leave(): void {
    if (this.#reading) removeReader(this.#control);
    this.#reading = false;
  }

  /** `input` watches the connection for the look after a reply; undefined: no looking (one CPU). */
  serve(session: FuseSession, notifications: RequestNotifications, device: DeviceIo, input: InputWatch | undefined): LoopEnd {
    const buffer = new Uint8Array(requestBufferSize);
    let answered = false;
    while (!stopRequested(this.#control)) {
      if (answered && input !== undefined && this.#looking.worthIt() && tryStartSpin(this.#control)) {
        this.#looking.found(requestDueSoon(input));
        endSpin(this.#control);
      }
      answered = true;
      const length = readRequest(device, buffer);
      if (length === "unmounted") return "unmounted";
      // The fd blocks: "empty" is a spurious wake-up, like "again".
      if (typeof length !== "number") continue;
      const reply = session.handle(buffer.subarray(0, length));
      const after = takeAll(notifications.afterReply);
      const before = takeAll(notifications.beforeReply);
      if (before.length > 0 && !this.#store(before, reply, device)) continue;
      // Leave the reader count before answering, so whoever waits on this very reply
      // (the stop poke) already sees this worker gone.
      if (stopRequested(this.#control)) this.leave();
      if (reply !== undefined && sendReply(device, reply, logger) === "unmounted") return "unmounted";
      if (after.length > 0) this.#store(after, undefined, device);
      this.#collection.afterRequest();
    }
    return "stopped";
  }

  /**
   * Writes stores (and the reply that follows them, if any), while another worker is free
   * to answer the READ a store may wait for (deferred-writes.ts); else hands them and the
   * reply to the main thread, which writes both: false then, the reply is not this
   * worker's to send.
   */
  #store(stores: readonly Uint8Array[], reply: Uint8Array | undefined, device: DeviceIo): boolean {
    if (storesOff(this.#control)) return true;
    if (!tryStartStore(this.#control, data.workers)) {
      report({ type: "deferred", notifications: [...stores], reply });
      return false;
    }
    try {
      for (const store of stores) {
        try {
          device.write(store);
        } catch (err) {
          // Only sendfile and mmap readers need the store (for the file's size): the reply still goes out.
          logger.debug("FUSE notification rejected by the kernel", { err });
        }
      }
    } finally {
      endStore(this.#control);
    }
    return true;
  }
}

const thread = new ServingThread(new Int32Array(data.control));
try {
  const root = await loadTree(data.treeModule, data.treeOptions);
  const device = openDeviceIo(data.fd);
  thread.enter();
  report({ type: "ready" });
  waitAtGate(new Int32Array(data.control));
  // Only past the gate are the shared tables final: a successor fills them with its
  // predecessor's state while its workers wait there.
  const notifications: RequestNotifications = { beforeReply: [], afterReply: [] };
  const session = servingSession(root, data.state, notifications, logger);
  const end = thread.serve(session, notifications, device, spinMs > 0 ? syscalls().watchInput(data.fd) : undefined);
  thread.leave();
  report({ type: "ended", reason: end });
} catch (err) {
  thread.leave();
  report({ type: "failed", message: err instanceof Error ? err.message : String(err) });
}

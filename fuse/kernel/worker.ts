/**
 * One serving thread: builds its own copy of the tree, then reads a request from the
 * shared /dev/fuse fd, answers it, and checks for a stop request, until told to stop
 * or the mount goes away. Blocking reads keep a round trip to one syscall each way.
 */

import { parentPort, workerData } from "node:worker_threads";
import { createLogger } from "../../core/log.ts";
import type { DirNode, RequestContext, TreeModule } from "../node.ts";
import { readOptionalFile } from "../../core/optional-file.ts";
import { SnapshotCache } from "../../core/snapshot-cache.ts";
import { openDeviceIo, type DeviceIo } from "./device-io.ts";
import { HandleStore } from "./handle-store.ts";
import { addReader, removeReader, stopRequested, waitAtGate, type LoopControl } from "./loop-control.ts";
import { NodeTable } from "./node-table.ts";
import { FuseSession, requestBufferSize } from "./session.ts";
import type { WorkerData, WorkerReport } from "./request-loop.ts";

const data = workerData as WorkerData;
// Records go to the loop's logger in the main thread, which filters and writes them.
const logger = createLogger({ level: "debug", fields: { worker: data.workerIndex }, write: (line) => report({ type: "log", line }) });

function report(message: WorkerReport): void {
  parentPort!.postMessage(message);
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function buildTree(): Promise<DirNode> {
  const module = (await import(data.treeModule)) as Partial<TreeModule>;
  if (typeof module.createTree !== "function") throw new Error(`${data.treeModule} does not export createTree(options)`);
  const root = await module.createTree(data.treeOptions);
  if (root?.kind !== "dir") throw new Error(`createTree of ${data.treeModule} did not return a directory node`);
  return root;
}

/**
 * Callers' cgroups, each read at most once a second: they only pick the bound a handle is
 * charged to, so a process moved meanwhile (or a pid reused) is charged to its old cgroup
 * for at most that long, and most opens save three system calls.
 */
const readingCgroups = new SnapshotCache<string>({ costMultiple: 0, minValidMs: 1000, maxValidMs: 1000, maxEntries: 4096 });

/**
 * The caller's cgroups, as /proc/<pid>/cgroup lists them: the handles it opens are charged
 * to them. A caller without a /proc entry (gone already) shares one bound with its kind.
 */
function readingCgroup(ctx: RequestContext): string {
  return readingCgroups.get(String(ctx.pid), () => readOptionalFile(`/proc/${ctx.pid}/cgroup`)?.trim() ?? "a caller without /proc entry");
}

type LoopEnd = "stopped" | "unmounted";

/** Serves until stopped or unmounted; counted as a reader from the gate until it decides to leave. */
class ServingThread {
  readonly #control: LoopControl;
  #reading = false;

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

  serve(session: FuseSession, device: DeviceIo): LoopEnd {
    const buffer = new Uint8Array(requestBufferSize);
    while (!stopRequested(this.#control)) {
      let length: number;
      try {
        length = device.read(buffer);
      } catch (err) {
        const code = errorCode(err);
        // ENOENT: the request was interrupted before we read it; EINTR/EAGAIN: try again.
        if (code === "ENOENT" || code === "EINTR" || code === "EAGAIN") continue;
        if (code === "ENODEV") return "unmounted";
        throw err;
      }
      const reply = session.handle(buffer.subarray(0, length));
      // Leave the reader count before answering, so whoever waits on this very reply
      // (the stop poke) already sees this worker gone.
      if (stopRequested(this.#control)) this.leave();
      if (reply === undefined) continue;
      try {
        device.write(reply);
      } catch (err) {
        const code = errorCode(err);
        if (code === "ENODEV") return "unmounted";
        // ENOENT: the caller was interrupted and the kernel dropped the request meanwhile.
        if (code !== "ENOENT") logger.error("FUSE reply rejected by the kernel", { err });
      }
    }
    return "stopped";
  }
}

const thread = new ServingThread(new Int32Array(data.control));
try {
  const root = await buildTree();
  const device = openDeviceIo(data.fd);
  thread.enter();
  report({ type: "ready" });
  waitAtGate(new Int32Array(data.control));
  // Only past the gate are the shared tables final: a successor fills them with its
  // predecessor's state while its workers wait there.
  const session = new FuseSession({
    root,
    nodes: new NodeTable(data.state.nodes),
    handles: new HandleStore(data.state.handles),
    logger,
    readerOf: readingCgroup,
    notify: (message) => {
      try {
        device.write(message);
      } catch (err) {
        // Only an optimisation for sendfile readers: the reply still goes out.
        logger.debug("FUSE notification rejected by the kernel", { err });
      }
    },
  });
  const end = thread.serve(session, device);
  thread.leave();
  report({ type: "ended", reason: end });
} catch (err) {
  thread.leave();
  report({ type: "failed", message: err instanceof Error ? err.message : String(err) });
}

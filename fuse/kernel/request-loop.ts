/**
 * Serves a mounted /dev/fuse fd with N worker threads, each in a blocking
 * read -> handle -> write loop, and stops them *between* requests.
 *
 * The loop owns neither the fd nor the mount: after stop() the fd is still open and
 * the mount still live, and all state the kernel refers to (node ids, open handles)
 * lives in a SharedFuseState that outlives the loop. A new loop given the same fd and
 * state carries on where the old one left off; that is the seam a handover of the fd
 * to a successor process will use.
 *
 * The main thread writes the page-cache stores a worker may not write itself (every other
 * worker busy with one: deferred-writes.ts) and expires the entries of names gone from the
 * tree's audited directories (entry-audit.ts), so, as when it serves alone (workers 0),
 * nothing on it may touch the mount synchronously.
 */

import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { Worker } from "node:worker_threads";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, isLogLevel, type Logger } from "../../core/log.ts";
import { createHandleStoreMemory, type HandleStoreSize } from "./handle-store.ts";
import { syscalls } from "../../core/syscalls.ts";
import { DeferredWrites } from "./deferred-writes.ts";
import { auditedDirectoriesOf, startEntryAudit } from "./entry-audit.ts";
import { openDeviceIo, type DeviceIo } from "./device-io.ts";
import { createLoopControl, openGate, readersLeft, requestStop, turnStoresOff } from "./loop-control.ts";
import { startMainThreadLoop } from "./main-thread-loop.ts";
import { createNodeTableMemory, NodeTable } from "./node-table.ts";
import { sendReply, type SharedFuseState } from "./serving.ts";
import { stopPokeName } from "./session.ts";
import type { AuditedDirectory } from "../node.ts";

export type { SharedFuseState };

export interface SharedFuseStateSize {
  nodes?: number;
  handles?: HandleStoreSize;
}

export function createSharedFuseState(size: SharedFuseStateSize = {}, treeState?: SharedArrayBuffer): SharedFuseState {
  return { nodes: createNodeTableMemory(size.nodes), handles: createHandleStoreMemory(size.handles), treeState };
}

export interface RequestLoopOptions {
  /** An open, mounted /dev/fuse fd. */
  fd: number;
  /** Where the fd is mounted: stop() wakes blocked readers with a request through it. */
  mountpoint: string;
  /** File URL of a module exporting createTree(options). */
  treeModule: string;
  treeOptions: unknown;
  state: SharedFuseState;
  /** Serving threads; 0 serves on the main thread (main-thread-loop.ts). */
  workers?: number;
  /**
   * A folder for Node's compile cache of the serving threads' modules (kept apart from the
   * main thread's environment). With it warm, a thread skips type stripping and compiling:
   * measured ~25 MiB less RSS per serving thread. Only root should be able to write it.
   */
  compileCacheDir?: string;
  /** Receives the workers' records too. */
  logger?: Logger;
  /**
   * Awaited once every worker is ready, before any reads: a successor fills `state`
   * here. If it throws, the loop ends without having read and the start fails.
   */
  beforeServing?: () => Promise<void>;
}

export type LoopEnd = "stopped" | "unmounted" | "failed";

export interface RequestLoop {
  /** Worker threads serving; 0 when the main thread serves. */
  readonly workers: number;
  /** Stops every worker between requests; the fd stays open and the mount live. */
  stop(): Promise<void>;
  /**
   * stop() for a process that is exiting and cannot await: pokes through child
   * processes. Node's exit waits for worker threads, so a worker left in a blocking
   * read would keep a crashing process from ever ending.
   */
  stopBlocking(): void;
  /** Settles once every worker has left: "unmounted" if the mount went away under it. */
  readonly finished: Promise<LoopEnd>;
}

export interface WorkerData {
  fd: number;
  state: SharedFuseState;
  control: SharedArrayBuffer;
  treeModule: string;
  treeOptions: unknown;
  workerIndex: number;
  /** How many workers serve, so one knows whether another is free while it writes a store. */
  workers: number;
}

export type WorkerReport =
  | { type: "ready" }
  | { type: "log"; line: string }
  /** Stores this worker could not write itself (every other worker was writing one), and the reply that follows them. */
  | { type: "deferred"; notifications: Uint8Array[]; reply: Uint8Array | undefined }
  | { type: "ended"; reason: "stopped" | "unmounted" } | { type: "failed"; message: string };

/**
 * The main thread alone on up to 2 CPUs; from 3, a worker per CPU, up to 8, so that
 * throughput grows with the cores. On 2 CPUs the main thread alone, which leaves out the
 * page-cache stores the kernel's known size makes redundant (known-sizes.ts), read 1.1x
 * what two workers read (1.61x LXCFS against 1.47x over every view, layout and reader
 * count in two runs of bench/views.ts; 15,224 against 12,406 reads per daemon CPU-s) at
 * 52 MiB RSS against ~80: a worker is a V8 isolate of its own (~15 MiB), and its readers
 * need the second CPU. Before the known sizes, every store's trip through the thread pool
 * held it to ~0.7x.
 */
export const defaultWorkers = availableParallelism() <= 2 ? 0 : Math.min(8, availableParallelism());
/**
 * A serving thread's garbage is per request and short-lived (a few KiB of text): a small
 * young generation holds it; V8's default (up to 3 x 16 MiB on 64-bit) only grows the RSS.
 * The old generation holds the tree and a few bounded caches: the cap turns a leak into a
 * worker failure the server reports, not a machine out of memory.
 */
const workerResourceLimits = { maxYoungGenerationSizeMb: 3, maxOldGenerationSizeMb: 256 };
const moduleUrl = import.meta.url;
/** worker.ts beside the sources, worker.js beside the built package's modules. */
const workerUrl = new URL(`./worker${moduleUrl.slice(moduleUrl.lastIndexOf("."))}`, moduleUrl);
const stopPollMs = 20;

export async function startRequestLoop(options: RequestLoopOptions): Promise<RequestLoop> {
  const count = options.workers ?? defaultWorkers;
  if (!Number.isInteger(count) || count < 0 || count > 64) throw new Error(`workers must be an integer in 0..64, got ${count}`);
  const logger = options.logger ?? createLogger({ fields: { component: "fuse" } });
  if (count === 0) return startMainThreadLoop({ ...options, logger });
  const control = createLoopControl();
  const deferred = new DeferredWrites(syscalls().writeOffThread, logger);
  let mainDevice: DeviceIo | undefined;
  /** A worker's stores, then the reply they precede, written from this thread (the fd is the workers' own). */
  const writeDeferred = (notifications: Uint8Array[], reply: Uint8Array | undefined): void =>
    deferred.add(options.fd, notifications, () => {
      if (reply !== undefined) sendReply((mainDevice ??= openDeviceIo(options.fd)), reply, logger);
    });
  const ends: LoopEnd[] = [];
  const ready: Promise<void>[] = [];
  const exited: Promise<void>[] = [];

  for (let workerIndex = 0; workerIndex < count; workerIndex++) {
    const data: WorkerData = {
      fd: options.fd,
      state: options.state,
      control: control.buffer as SharedArrayBuffer,
      treeModule: options.treeModule,
      treeOptions: options.treeOptions,
      workerIndex,
      workers: count,
    };
    const worker = new Worker(workerUrl, {
      workerData: data,
      resourceLimits: workerResourceLimits,
      env: options.compileCacheDir === undefined ? process.env : { ...process.env, NODE_COMPILE_CACHE: options.compileCacheDir },
    });
    let becameReady: () => void = () => {};
    let failedToStart: (err: Error) => void = () => {};
    ready.push(
      new Promise<void>((resolve, reject) => {
        becameReady = resolve;
        failedToStart = reject;
      }),
    );
    worker.on("message", (report: WorkerReport) => {
      if (report.type === "log") relayLog(logger, report.line);
      else if (report.type === "deferred") writeDeferred(report.notifications, report.reply);
      else if (report.type === "ready") becameReady();
      else if (report.type === "failed") {
        ends.push("failed");
        failedToStart(new Error(`FUSE worker ${workerIndex}: ${report.message}`));
        logger.error("FUSE worker failed", { worker: workerIndex, message: report.message });
      } else ends.push(report.reason);
    });
    worker.on("error", (err) => {
      ends.push("failed");
      failedToStart(err);
      logger.error("FUSE worker crashed", { worker: workerIndex, err });
    });
    exited.push(
      new Promise<void>((resolve) =>
        worker.on("exit", () => {
          failedToStart(new Error(`FUSE worker ${workerIndex} exited before it was ready`));
          resolve();
        }),
      ),
    );
  }

  const finished = Promise.all(exited).then((): LoopEnd => {
    if (ends.includes("unmounted")) return "unmounted";
    return ends.includes("failed") ? "failed" : "stopped";
  });

  let directories: AuditedDirectory[] = [];
  try {
    await Promise.all(ready);
    directories = await auditedDirectoriesOf(options.treeModule, options.treeOptions);
    await options.beforeServing?.();
  } catch (err) {
    // Nobody has read yet: the gate opens onto a stop request.
    requestStop(control);
    openGate(control);
    await finished;
    throw err;
  }
  openGate(control);
  // Only now are the shared tables final: a successor fills them in beforeServing.
  const audit = startEntryAudit({ fd: options.fd, nodes: new NodeTable(options.state.nodes), directories, write: syscalls().writeOffThread, logger });
  void finished.then(() => audit.stop());

  const pokePath = join(options.mountpoint, stopPokeName);
  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    await audit.stop();
    // Deferred stores may wait for READs: the workers answer them before they are told to stop.
    turnStoresOff(control);
    await deferred.drained();
    requestStop(control);
    let allLeft = false;
    void finished.then(() => (allLeft = true));
    // Each poke is one LOOKUP (a miss is never cached, so it always reaches a worker);
    // whichever worker answers it sees the stop and leaves.
    // A poke that finds no reader left waits in the kernel for the next loop or the
    // unmount; the polling keeps stop() from waiting with it.
    while (!allLeft && readersLeft(control) > 0) {
      let answered = false;
      const poke = stat(pokePath)
        .catch(() => {})
        .finally(() => (answered = true));
      while (!answered && !allLeft && readersLeft(control) > 0) await Promise.race([poke, sleep(stopPollMs)]);
    }
    await finished;
  };

  const stopBlocking = (): void => {
    requestStop(control);
    // A poke that finds no reader left would wait forever: each has a deadline.
    for (let pokes = 0; readersLeft(control) > 0 && pokes < count + 2; pokes++) {
      spawnSync("stat", [pokePath], { stdio: "ignore", timeout: 2000, killSignal: "SIGKILL" });
    }
  };

  return {
    workers: count,
    stop: () => (stopping ??= stop()),
    stopBlocking,
    finished,
  };
}

/** Re-emits a worker's JSON log line through the main thread's logger. */
function relayLog(logger: Logger, line: string): void {
  const { level, msg, time: _time, ...fields } = JSON.parse(line) as Record<string, unknown>;
  if (typeof level === "string" && isLogLevel(level)) logger[level](String(msg), fields);
}

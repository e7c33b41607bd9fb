/**
 * What every way of serving a connection shares, whichever thread it runs on: loading the
 * tree, the session over the shared tables, and one request's read and reply with the
 * kernel's errors sorted into what to do next.
 */

import { availableParallelism } from "node:os";
import type { Logger } from "../../core/log.ts";
import { readOptionalFile } from "../../core/optional-file.ts";
import { SnapshotCache } from "../../core/snapshot-cache.ts";
import type { InputWatch } from "../../core/syscalls.ts";
import type { DirNode, RequestContext, TreeModule } from "../node.ts";
import type { DeviceIo } from "./device-io.ts";
import { HandleStore } from "./handle-store.ts";
import type { KnownSizes } from "./known-sizes.ts";
import { NodeTable } from "./node-table.ts";
import { FuseSession } from "./session.ts";

/** The node ids and open handles the kernel refers to, shared by every serving thread and handed to a successor. */
export interface SharedFuseState {
  nodes: SharedArrayBuffer;
  handles: SharedArrayBuffer;
  /**
   * Shared memory the tree keeps between requests (procview's load averages), which a
   * successor takes over with the rest; the request loops never touch it.
   */
  treeState?: SharedArrayBuffer;
}

export async function loadTree(treeModule: string, treeOptions: unknown): Promise<DirNode> {
  const module = (await import(treeModule)) as Partial<TreeModule>;
  if (typeof module.createTree !== "function") throw new Error(`${treeModule} does not export createTree(options)`);
  const root = await module.createTree(treeOptions);
  if (root?.kind !== "dir") throw new Error(`createTree of ${treeModule} did not return a directory node`);
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

/** The notifications one request gave rise to: those its reply must follow, and those that follow it. */
export interface RequestNotifications {
  beforeReply: Uint8Array[];
  afterReply: Uint8Array[];
}

const noNotifications: readonly Uint8Array[] = [];

/** Takes what `list` holds, leaving it empty; most requests give rise to none, and then nothing is allocated. */
export function takeAll(list: Uint8Array[]): readonly Uint8Array[] {
  return list.length === 0 ? noNotifications : list.splice(0);
}

/**
 * A session answering from `root` over the shared tables. Its notifications (page-cache
 * stores) go into `notifications` for the loop to write, never on a serving thread that
 * could be the one to answer what they wait for (deferred-writes.ts).
 */
export function servingSession(root: DirNode, state: SharedFuseState, notifications: RequestNotifications, logger: Logger, knownSizes?: KnownSizes): FuseSession {
  return new FuseSession({
    root,
    nodes: new NodeTable(state.nodes),
    handles: new HandleStore(state.handles),
    logger,
    readerOf: readingCgroup,
    notify: (message, beforeReply) => (beforeReply ? notifications.beforeReply : notifications.afterReply).push(message),
    knownSizes,
  });
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * How long a serving thread that has just answered looks for the next request before it
 * sleeps in the kernel. A reader's next request (the READ after its OPEN, the RELEASE after
 * its last READ) comes within some 10-30 µs, and a sleep and wake-up costs more than that.
 * Measured on 2 CPUs (`npm run bench -- --parts views`, mean over the views): one reader
 * gets 1.1-1.3x the reads/s by reader pid, 1.4-1.7x per container, of sleeping at once;
 * 2 and 8 readers, whose requests mostly queue, within ±5 %. The main thread serving alone
 * gets 2x with one reader. With a single CPU the reader needs that very CPU to send its
 * request, so there is no spinning.
 */
export const spinMs = availableParallelism() > 1 ? 0.05 : 0;

/** Whether a request is queued where `input` looks, looking again for up to spinMs. */
export function requestDueSoon(input: Pick<InputWatch, "ready">): boolean {
  if (input.ready()) return true;
  const until = performance.now() + spinMs;
  while (performance.now() < until) if (input.ready()) return true;
  return false;
}

/**
 * Looks for the next request only while looking pays: after a look that found nothing
 * (the readers wait for the CPU this thread looks on, or there are none), the next
 * replies go straight to sleep, twice as many after each miss, up to 64.
 */
export class LookingPolicy {
  #skip = 0;
  #backoff = 0;

  /** Whether to look after this reply. */
  worthIt(): boolean {
    if (this.#skip === 0) return true;
    this.#skip--;
    return false;
  }

  /** What the look found: a request, or nothing within spinMs. */
  found(found: boolean): void {
    this.#backoff = found ? 0 : Math.min(64, Math.max(1, this.#backoff * 2));
    this.#skip = this.#backoff;
  }
}

/**
 * One request into `buffer`: its length; "again" when the kernel dropped an interrupted
 * request or a signal came; "empty" when a non-blocking fd has nothing queued;
 * "unmounted" once the connection is gone.
 */
export function readRequest(device: DeviceIo, buffer: Uint8Array): number | "again" | "empty" | "unmounted" {
  try {
    return device.read(buffer);
  } catch (err) {
    const code = errorCode(err);
    if (code === "ENOENT" || code === "EINTR") return "again";
    if (code === "EAGAIN") return "empty";
    if (code === "ENODEV") return "unmounted";
    throw err;
  }
}

/** Sends a reply; "unmounted" once the connection is gone. */
export function sendReply(device: DeviceIo, reply: Uint8Array, logger: Logger): "sent" | "unmounted" {
  try {
    device.write(reply);
  } catch (err) {
    const code = errorCode(err);
    if (code === "ENODEV") return "unmounted";
    // ENOENT: the caller was interrupted and the kernel dropped the request meanwhile.
    if (code !== "ENOENT") logger.error("FUSE reply rejected by the kernel", { err });
  }
  return "sent";
}

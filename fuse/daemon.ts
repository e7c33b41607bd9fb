/**
 * The FUSE server process's lifecycle: prepare the mountpoint, mount /dev/fuse (or take
 * a live server's connection over), serve it with the worker request loop, announce
 * liveness for the NRI plugin (status file), offer the connection to a successor, and
 * undo all of it on stop. What is served is the tree module's business.
 */

import { closeSync, realpathSync } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, type Logger } from "../core/log.ts";
import { clearFusePidFile, clearFuseStatus, writeFusePidFile, writeFuseStatus } from "../core/fuse-status.ts";
import { syscalls } from "../core/syscalls.ts";
import { healAfterStart, procviewDeviceOn } from "../core/heal.ts";
import { detachFuseMountNow, isProcviewMount, mountFuse, openFuseDevice, prepareMountpoint, unmountFuse, unmountOrDetach } from "./kernel/mount.ts";
import { createSharedFuseState, startRequestLoop, type LoopEnd, type RequestLoop, type SharedFuseState } from "./kernel/request-loop.ts";
import { listenForSuccessor, type HandoverListener } from "./handover/predecessor.ts";
import { handoverSocketPath } from "./handover/protocol.ts";
import { NoHandoverOffered, takeOver } from "./handover/successor.ts";

export interface FuseServerOptions {
  mountpoint: string;
  stateDir: string;
  /** File URL of a module exporting createTree(options). */
  treeModule: string;
  /** Handed to createTree in every worker thread, so it must be structured-clonable. */
  treeOptions: unknown;
  workers?: number;
  /** Node's compile cache for the serving threads (see RequestLoopOptions). */
  compileCacheDir?: string;
  logger?: Logger;
  /** Take the connection of the live server on the mountpoint over; mount anew if there is none. */
  replace?: boolean;
  /** Shared memory the tree keeps between requests, handed to a successor (SharedFuseState.treeState). */
  treeState?: SharedArrayBuffer;
}

export interface FuseServer {
  /** Canonical path of the mount. */
  readonly mountpoint: string;
  /** The pid of the server this one took over from, if it did. */
  readonly predecessor: number | undefined;
  /** Stops serving between requests, unmounts, clears the status file (nothing to do once replaced). */
  stop(): Promise<void>;
  /** Resolves if the server ends without stop(): the mount was removed from outside (or every worker failed). */
  closed: Promise<void>;
  /** Resolves with the successor's pid once it serves the connection: this process serves nothing more, and unmounts nothing. */
  replaced: Promise<number>;
}

/** What answers a mounted connection's requests: the kernel backend's worker request loop, or libfuse's thread (fuse-native). */
export interface Serving {
  /** Stops answering between requests; the mount stays. */
  stop(): Promise<void>;
  /** stop() for a process that is exiting and cannot await. */
  stopBlocking(): void;
  /** Settles once serving ended: "unmounted" if the mount went away under it. */
  readonly finished: Promise<LoopEnd>;
}

/** A mounted connection this process serves, by either backend. */
export interface Connection {
  mountpoint: string;
  serving: Serving;
  predecessor?: number;
  /** Set when this process mounted anew: binds of a dead server's mount may wait to be healed. */
  freshMount?: { leftoverDevice?: string };
  /** The /dev/fuse fd and the state a successor takes over with, and serving it again after a failed handover; the kernel backend only. */
  handover?: { fd: number; state: SharedFuseState; serveAgain(): Promise<Serving> };
  /** Lets the connection go (closes this process's fd: the connection ends with the last fd, the mount with it). */
  close(): void;
}

/** Writes what the NRI plugin's liveness check and systemd's PIDFile read. */
export function announceServer(stateDir: string, mountpoint: string): void {
  const pid = process.pid;
  writeFuseStatus(stateDir, { pid, mountpoint, startedAt: Date.now(), device: procviewDeviceOn(mountpoint) });
  writeFusePidFile(stateDir, pid);
}

export async function startFuseServer(o: FuseServerOptions): Promise<FuseServer> {
  const logger = o.logger ?? createLogger({ fields: { component: "fuse" } });
  const announce = (mountpoint: string): void => announceServer(o.stateDir, mountpoint);
  const startLoop = (fd: number, mountpoint: string, state: SharedFuseState, beforeServing?: () => Promise<void>): Promise<RequestLoop> =>
    startRequestLoop({ fd, mountpoint, treeModule: o.treeModule, treeOptions: o.treeOptions, state, workers: o.workers, compileCacheDir: o.compileCacheDir, logger, beforeServing });
  const connection = (o.replace ? await takeOverLiveServer(o, logger, startLoop, announce) : undefined) ?? (await mountAndServe(o, logger, startLoop, announce));
  return serveConnection(o.stateDir, logger, connection, { workers: connection.workers });
}

/**
 * The lifecycle of a served mount, one for both backends: heal a fresh mount's dead binds,
 * notice an unmount from outside, offer the connection to a successor (where the backend
 * can hand it over), and on stop (or at exit) stop serving, unmount, clear the status file.
 */
export async function serveConnection(stateDir: string, logger: Logger, connection: Connection, servingFields: Record<string, unknown>): Promise<FuseServer> {
  const { mountpoint, handover } = connection;
  const pid = process.pid;
  let serving = connection.serving;
  logger.info("FUSE server serving", { mountpoint, ...servingFields, pid, predecessor: connection.predecessor });
  // A taken-over connection is the same one the binds use: only a fresh mount has dead binds to heal.
  if (connection.freshMount) void healAfterStart({ stateDir, mountpoint, leftoverDevice: connection.freshMount.leftoverDevice, logger });

  let stopping = false;
  let handingOver = false;
  let released = false;
  const release = (options: { replaced: boolean }): void => {
    if (released) return;
    released = true;
    process.off("exit", cleanUpAtExit);
    // A successor has written its own status; ours must not remove it.
    if (!options.replaced) {
      clearFuseStatus(stateDir, pid);
      clearFusePidFile(stateDir, pid);
    }
    connection.close();
  };

  // An exit without stop() (a crash, process.exit) still ends serving and leaves no mount.
  const cleanUpAtExit = (): void => {
    serving.stopBlocking();
    if (isProcviewMount(mountpoint)) detachFuseMountNow(mountpoint);
    release({ replaced: false });
  };
  process.on("exit", cleanUpAtExit);

  let announceClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => (announceClosed = resolve));
  let announceReplaced: (successor: number) => void = () => {};
  const replaced = new Promise<number>((resolve) => (announceReplaced = resolve));

  let listener: HandoverListener | undefined;
  const watch = (watched: Serving): void => {
    void watched.finished.then(async (end) => {
      if (stopping || handingOver || watched !== serving) return;
      // Not asked to stop: the mount was removed from outside or every worker failed.
      logger.warn("FUSE server ended without stop()", { mountpoint, end });
      await listener?.close();
      if (end === "failed" && isProcviewMount(mountpoint)) {
        await unmountFuse(mountpoint, { lazy: true }).catch((err) => logger.error("unmount failed", { mountpoint, err }));
      }
      release({ replaced: false });
      announceClosed();
    });
  };
  watch(serving);

  if (handover) {
    listener = await listenForSuccessor({
      socketPath: handoverSocketPath(stateDir),
      mountpoint,
      fd: handover.fd,
      state: handover.state,
      logger,
      stopServing: async () => {
        handingOver = true;
        await serving.stop();
      },
      resumeServing: async () => {
        try {
          serving = await handover.serveAgain();
        } catch (err) {
          // Nothing serves the mount now; exiting lets a supervisor start a server that mounts anew.
          logger.error("cannot serve again after a failed handover; exiting", { mountpoint, err });
          process.exit(1);
        }
        handingOver = false;
        watch(serving);
        announceServer(stateDir, mountpoint);
      },
      handedOver: (successor) => {
        release({ replaced: true });
        announceReplaced(successor);
      },
    }).catch((err) => {
      // Serving matters more than being replaceable later.
      logger.warn("cannot listen for a successor: `procview fuse --replace` will not be able to take this server over", { err });
      return undefined;
    });
  }

  const stopServing = async (): Promise<void> => {
    // A handover under way ends first, either way: stopping in its midst would unmount
    // the connection a successor is about to serve.
    await listener?.close();
    if (released) return;
    stopping = true;
    await serving.stop();
    await unmountOrDetach(mountpoint, logger);
    release({ replaced: false });
    logger.info("FUSE server stopped", { mountpoint });
  };
  let stopped: Promise<void> | undefined;

  return { mountpoint, predecessor: connection.predecessor, stop: () => (stopped ??= stopServing()), closed, replaced };
}

/** The kernel backend's connection: its request loop serves, and a successor can take it over. */
type KernelConnection = Connection & { workers: number };

function kernelConnection(
  fd: number,
  mountpoint: string,
  state: SharedFuseState,
  loop: RequestLoop,
  startLoop: LoopStarter,
  close: () => void,
  origin: Pick<Connection, "predecessor" | "freshMount">,
): KernelConnection {
  return { ...origin, mountpoint, serving: loop, workers: loop.workers, handover: { fd, state, serveAgain: () => startLoop(fd, mountpoint, state) }, close };
}

type LoopStarter = (fd: number, mountpoint: string, state: SharedFuseState, beforeServing?: () => Promise<void>) => Promise<RequestLoop>;

async function mountAndServe(o: FuseServerOptions, logger: Logger, startLoop: LoopStarter, announce: (mountpoint: string) => void): Promise<KernelConnection> {
  // Before a dead server's mount is removed: its device is what binds of it in containers show.
  const leftoverDevice = procviewDeviceOn(o.mountpoint);
  const mountpoint = await prepareMountpoint(o.mountpoint, logger);
  const fd = openFuseDevice();
  try {
    await mountFuse(fd, mountpoint);
  } catch (err) {
    closeSync(fd);
    throw err;
  }

  // Nothing must stay mounted if the start fails: a mount nobody serves hangs its callers.
  const abandonMount = async (): Promise<void> => {
    await unmountFuse(mountpoint, { lazy: true }).catch((err) => logger.warn("unmount after failed start failed", { mountpoint, err }));
    closeSync(fd);
  };
  const state = createSharedFuseState({}, o.treeState);
  let loop;
  try {
    loop = await startLoop(fd, mountpoint, state);
  } catch (err) {
    await abandonMount();
    throw err;
  }
  try {
    announce(mountpoint);
  } catch (err) {
    await loop.stop();
    await abandonMount();
    throw new Error(`cannot write the FUSE status file in ${o.stateDir}: ${(err as Error).message}`);
  }
  return kernelConnection(fd, mountpoint, state, loop, startLoop, () => closeSync(fd), { freshMount: { leftoverDevice } });
}

/**
 * Takes over the live server on the mountpoint; undefined if there is none to take
 * over (no mount, or a dead one): the caller then mounts anew.
 */
async function takeOverLiveServer(o: FuseServerOptions, logger: Logger, startLoop: LoopStarter, announce: (mountpoint: string) => void): Promise<KernelConnection | undefined> {
  const mountpoint = canonicalMountpoint(o.mountpoint);
  if (!(await isLiveProcviewMount(mountpoint))) {
    logger.info("--replace: no live procview FUSE server on the mountpoint; mounting anew", { mountpoint });
    return undefined;
  }
  const socketPath = handoverSocketPath(o.stateDir);
  try {
    const taken = await takeOver({
      socketPath,
      mountpoint,
      logger,
      startLoop: (fd, state, beforeServing) => startLoop(fd, mountpoint, state, beforeServing),
      announce: () => announce(mountpoint),
      treeState: o.treeState,
    });
    // Taken with pidfd_getfd, the fd is unknown to Deno's node:fs: close it with libc.
    return kernelConnection(taken.fd, mountpoint, taken.state, taken.loop, startLoop, () => syscalls().close(taken.fd), { predecessor: taken.predecessor });
  } catch (err) {
    if (err instanceof NoHandoverOffered) {
      throw new Error(
        `--replace: a procview FUSE server serves ${mountpoint} but offers no handover on ${socketPath} (${err.message}): ` +
          "it is of a version without --replace, another backend, or uses another --state-dir; stop it first",
      );
    }
    throw new Error(`--replace: taking over the FUSE server on ${mountpoint} failed; it serves on: ${(err as Error).message}`);
  }
}

/** The path mountinfo shows for `mountpoint`, resolved through its parent (the mount itself may be dead). */
function canonicalMountpoint(mountpoint: string): string {
  const absolute = resolve(mountpoint);
  try {
    return join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

const liveCheckTimeoutMs = 5_000;

/** A procview mount that answers; a dead one ("not connected") is for a fresh mount to replace. */
async function isLiveProcviewMount(mountpoint: string): Promise<boolean> {
  if (!isProcviewMount(mountpoint)) return false;
  // Bounded: a hung server's mount never answers, and the stat would wait with it.
  const answer = await Promise.race([
    stat(mountpoint).then(() => "live" as const, (err: NodeJS.ErrnoException) => (err.code === "ENOTCONN" ? ("dead" as const) : ("live" as const))),
    sleep(liveCheckTimeoutMs).then(() => "hung" as const),
  ]);
  if (answer === "hung") throw new Error(`--replace: the FUSE server on ${mountpoint} does not answer within ${liveCheckTimeoutMs} ms; stop it first`);
  return answer === "live";
}

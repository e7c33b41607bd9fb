/**
 * The FUSE server process's lifecycle: prepare the mountpoint, mount /dev/fuse, serve
 * it with the worker request loop, announce liveness for the NRI plugin (status file),
 * and undo all of it on stop. What is served is the tree module's business.
 */

import { closeSync } from "node:fs";
import { createLogger, type Logger } from "../core/log.ts";
import { clearFuseStatus, writeFuseStatus } from "../core/fuse-status.ts";
import { healAfterStart, procviewDeviceOn } from "../core/heal.ts";
import { detachFuseMountNow, isProcviewMount, mountFuse, openFuseDevice, prepareMountpoint, unmountFuse, unmountOrDetach } from "./kernel/mount.ts";
import { createSharedFuseState, startRequestLoop } from "./kernel/request-loop.ts";

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
}

export interface FuseServer {
  /** Canonical path of the mount. */
  readonly mountpoint: string;
  /** Stops serving between requests, unmounts, clears the status file. */
  stop(): Promise<void>;
  /** Resolves if the server ends without stop(): the mount was removed from outside (or every worker failed). */
  closed: Promise<void>;
}

export async function startFuseServer(o: FuseServerOptions): Promise<FuseServer> {
  const logger = o.logger ?? createLogger({ fields: { component: "fuse" } });
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
  let loop;
  try {
    loop = await startRequestLoop({
      fd,
      mountpoint,
      treeModule: o.treeModule,
      treeOptions: o.treeOptions,
      state: createSharedFuseState(),
      workers: o.workers,
      compileCacheDir: o.compileCacheDir,
      logger,
    });
  } catch (err) {
    await abandonMount();
    throw err;
  }

  const pid = process.pid;
  try {
    writeFuseStatus(o.stateDir, { pid, mountpoint, startedAt: Date.now() });
  } catch (err) {
    await loop.stop();
    await abandonMount();
    throw new Error(`cannot write the FUSE status file in ${o.stateDir}: ${(err as Error).message}`);
  }
  logger.info("FUSE server serving", { mountpoint, workers: loop.workers, pid });
  void healAfterStart({ stateDir: o.stateDir, mountpoint, leftoverDevice, logger });

  let stopping = false;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off("exit", cleanUpAtExit);
    clearFuseStatus(o.stateDir, pid);
    closeSync(fd);
  };

  // An exit without stop() (a crash, process.exit) still ends serving and leaves no mount.
  const cleanUpAtExit = (): void => {
    loop.stopBlocking();
    if (isProcviewMount(mountpoint)) detachFuseMountNow(mountpoint);
    release();
  };
  process.on("exit", cleanUpAtExit);

  let announceClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => (announceClosed = resolve));
  void loop.finished.then(async (end) => {
    if (stopping) return;
    // Not asked to stop: the mount was removed from outside or every worker failed.
    logger.warn("FUSE server ended without stop()", { mountpoint, end });
    if (end === "failed" && isProcviewMount(mountpoint)) {
      await unmountFuse(mountpoint, { lazy: true }).catch((err) => logger.error("unmount failed", { mountpoint, err }));
    }
    release();
    announceClosed();
  });

  const stopServing = async (): Promise<void> => {
    stopping = true;
    await loop.stop();
    if (!released) await unmountOrDetach(mountpoint, logger);
    release();
    logger.info("FUSE server stopped", { mountpoint });
  };
  let stopped: Promise<void> | undefined;

  return { mountpoint, stop: () => (stopped ??= stopServing()), closed };
}

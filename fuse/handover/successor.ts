/**
 * The taking side of a handover: asks the server on the handover socket for its
 * /dev/fuse connection, copies the fd out of that process (pidfd_getfd: the same open
 * file, so the same connection; reopening /proc/PID/fd/N would make a new one), readies
 * workers, then has the server stop and send its tables, and commits.
 */

import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { statSync } from "node:fs";
import type { Logger } from "../../core/log.ts";
import { syscalls } from "../../core/syscalls.ts";
import type { RequestLoop, SharedFuseState } from "../kernel/request-loop.ts";
import { HandoverChannel } from "./channel.ts";
import { handoverVersion, parseLayout, parseOffer } from "./protocol.ts";
import { allocateState, unpackState } from "./state.ts";

export interface TakeOverOptions {
  socketPath: string;
  mountpoint: string;
  logger: Logger;
  /** Starts workers on fd and state; they read only after beforeServing resolves. */
  startLoop(fd: number, state: SharedFuseState, beforeServing: () => Promise<void>): Promise<RequestLoop>;
  /** Called with the state in place, just before the commit: from here on, this process is the server. */
  announce(): void;
  /** This server's tree state (SharedFuseState.treeState), untouched yet: the server's is laid over it. */
  treeState?: SharedArrayBuffer;
}

export interface TakenOver {
  fd: number;
  state: SharedFuseState;
  loop: RequestLoop;
  predecessor: number;
}

const connectTimeoutMs = 5_000;
const listenGraceMs = 3_000;
const offerTimeoutMs = 10_000;
/** The server stops between requests, then packs its tables. */
const stateTimeoutMs = 30_000;

export class NoHandoverOffered extends Error {}

export async function takeOver(options: TakeOverOptions): Promise<TakenOver> {
  const { logger } = options;
  const channel = new HandoverChannel(await connectWithin(options.socketPath, connectTimeoutMs));
  let fd: number | undefined;
  try {
    await channel.send({ type: "hello", version: handoverVersion, pid: process.pid, mountpoint: options.mountpoint });
    const offer = parseOffer(await channel.receive("offer", offerTimeoutMs));
    fd = copyFdFromProcess(offer.pid, offer.fd);
    assertFuseDevice(fd, offer);
    logger.info("copied the FUSE connection's fd from the serving process", { predecessor: offer.pid, fd });
    const state = allocateState(offer.sizes, options.treeState);
    const takenFd = fd;
    const loop = await options.startLoop(fd, state, async () => {
      await channel.send({ type: "stop" });
      const layout = parseLayout(await channel.receive("state", stateTimeoutMs));
      unpackState(state, layout, await channel.receiveBytes(stateTimeoutMs));
      options.announce();
      await channel.send({ type: "commit" });
      logger.info("took the FUSE connection over", { predecessor: offer.pid, mountpoint: options.mountpoint, fd: takenFd });
    });
    channel.close();
    return { fd, state, loop, predecessor: offer.pid };
  } catch (err) {
    await channel.send({ type: "error", reason: (err as Error).message }).catch(() => {});
    channel.close();
    if (fd !== undefined) syscalls().close(fd);
    throw err;
  }
}

/** The same open file as `fd` in process `pid` (needs ptrace rights over it: root, or CAP_SYS_PTRACE). */
function copyFdFromProcess(pid: number, fd: number): number {
  const calls = syscalls();
  const pidfd = calls.pidfdOpen(pid);
  try {
    return calls.pidfdGetfd(pidfd, fd);
  } finally {
    calls.close(pidfd);
  }
}

/** /dev/fuse is the misc character device 10:229, under whatever path a container has it. */
const fuseDeviceNumber = { major: 10, minor: 229 };

function assertFuseDevice(fd: number, offer: { pid: number; fd: number }): void {
  // stat of the magic link is the open file's: fstat would do, but Deno's node:fs knows
  // only the fds it opened itself.
  const device = statSync(`/proc/self/fd/${fd}`);
  const major = Math.floor(device.rdev / 256) & 0xfff;
  const minor = (device.rdev & 0xff) | (Math.floor(device.rdev / 4096) & 0xfff00);
  if (!device.isCharacterDevice() || major !== fuseDeviceNumber.major || minor !== fuseDeviceNumber.minor) {
    throw new Error(`fd ${offer.fd} of pid ${offer.pid} is not /dev/fuse`);
  }
}

/**
 * Connects, retrying while nothing listens yet for a short while: a server listens
 * only once it serves, a moment after its mount appears.
 */
async function connectWithin(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + listenGraceMs;
  for (;;) {
    try {
      return await connectOnce(path, timeoutMs);
    } catch (err) {
      if (!(err instanceof NoHandoverOffered) || Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

function connectOnce(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const refused = err.code === "ENOENT" || err.code === "ECONNREFUSED";
      reject(refused ? new NoHandoverOffered(`nothing listens on ${path} (${err.code})`) : err);
    });
  });
}

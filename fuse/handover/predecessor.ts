/**
 * The serving side of a handover: listens on the state dir's handover socket and,
 * when a successor asks, gives it the /dev/fuse connection and the tables.
 *
 * Serving stops only once the successor holds a copy of the fd and its workers are
 * ready, and only between requests; readers then wait in the kernel until the
 * successor reads. Anything going wrong before the successor commits makes this
 * server serve again on its own fd and state, so a failed replace loses nothing.
 */

import { createServer, type Server, type Socket } from "node:net";
import { chmodSync, rmSync } from "node:fs";
import type { Logger } from "../../core/log.ts";
import type { SharedFuseState } from "../kernel/request-loop.ts";
import { HandoverChannel } from "./channel.ts";
import { handoverVersion, parseHello } from "./protocol.ts";
import { packState, stateSizes } from "./state.ts";

export interface PredecessorOptions {
  socketPath: string;
  mountpoint: string;
  fd: number;
  state: SharedFuseState;
  logger: Logger;
  /** Stops serving between requests; fd and mount stay. */
  stopServing(): Promise<void>;
  /** Serves again on the same fd and state, after a handover that did not happen. */
  resumeServing(): Promise<void>;
  /** The successor serves: close the fd, and never unmount. */
  handedOver(successorPid: number): void;
}

export interface HandoverListener {
  /**
   * Stops accepting successors. A handover under way is called off if this server still
   * serves; past that point it is waited for (bounded by the commit timeout): stopping
   * in its midst would unmount the connection a successor is about to serve.
   */
  close(): Promise<void>;
}

const helloTimeoutMs = 5_000;
/** The successor builds its workers' trees meanwhile; this server serves all along. */
const readyTimeoutMs = 60_000;
/** Readers wait from our stop until the successor reads: it only has to unpack the state. */
const commitTimeoutMs = 15_000;

export async function listenForSuccessor(options: PredecessorOptions): Promise<HandoverListener> {
  const { logger } = options;
  let server: Server | undefined;
  let inProgress: Promise<void> = Promise.resolve();
  let busy = false;
  let closed = false;
  /** Calls the handover under way off, while this server has not stopped serving for it. */
  let callOff: (() => void) | undefined;

  const listen = async (): Promise<void> => {
    // A crashed server leaves its socket file; a live one never reaches here (its mount is served).
    rmSync(options.socketPath, { force: true });
    const listening = createServer((socket) => void accept(socket));
    await new Promise<void>((resolve, reject) => {
      listening.once("error", reject);
      listening.listen(options.socketPath, () => {
        listening.off("error", reject);
        resolve();
      });
    });
    chmodSync(options.socketPath, 0o600);
    server = listening;
  };

  // Closing a unix listener unlinks its path at once; stopping to listen while a handover
  // runs leaves that path free for the successor, and no second successor in meanwhile.
  // (close()'s callback would wait for the accepted connection to end: not awaited.)
  const stopListening = (): void => {
    server?.close();
    server = undefined;
  };

  const accept = async (socket: Socket): Promise<void> => {
    if (busy) {
      socket.destroy();
      return;
    }
    busy = true;
    let settle: () => void = () => {};
    inProgress = new Promise((resolve) => (settle = resolve));
    try {
      stopListening();
      const channel = new HandoverChannel(socket);
      callOff = () => channel.close();
      const replaced = await handOver(channel, { ...options, stopServing: () => ((callOff = undefined), options.stopServing()) });
      callOff = undefined;
      if (!replaced && !closed) await listen();
    } catch (err) {
      logger.error("handover listener failed", { err });
    } finally {
      busy = false;
      settle();
    }
  };

  await listen();
  return {
    async close() {
      closed = true;
      callOff?.();
      await inProgress;
      stopListening();
    },
  };
}

/** One successor's attempt; true if it took over. */
async function handOver(channel: HandoverChannel, options: PredecessorOptions): Promise<boolean> {
  const { logger } = options;
  let successor: number | undefined;
  let stopped = false;
  try {
    const hello = parseHello(await channel.receive("hello", helloTimeoutMs));
    successor = hello.pid;
    if (hello.version !== handoverVersion) throw new Error(`successor speaks handover version ${hello.version}, this server ${handoverVersion}`);
    if (hello.mountpoint !== options.mountpoint) throw new Error(`successor wants ${hello.mountpoint}, this server serves ${options.mountpoint}`);
    logger.info("handover requested", { successor, mountpoint: options.mountpoint });
    await channel.send({ type: "offer", pid: process.pid, fd: options.fd, sizes: stateSizes(options.state) });
    await channel.receive("stop", readyTimeoutMs);
    logger.info("the successor is ready; stopping between requests", { successor });
    await options.stopServing();
    stopped = true;
    const { layout, bytes } = packState(options.state);
    await channel.send({ type: "state", layout });
    await channel.sendBytes(bytes);
    logger.info("stopped serving; state sent to the successor", { successor, stateBytes: bytes.byteLength });
    await channel.receive("commit", commitTimeoutMs);
  } catch (err) {
    const reason = (err as Error).message;
    await channel.send({ type: "error", reason }).catch(() => {});
    channel.close();
    logger.warn("handover failed; serving on", { successor, reason, resumed: stopped });
    if (stopped) await options.resumeServing();
    return false;
  }
  channel.close();
  logger.info("handed the FUSE connection over", { successor, mountpoint: options.mountpoint });
  options.handedOver(successor);
  return true;
}

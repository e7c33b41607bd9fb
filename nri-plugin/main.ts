/**
 * Entry point of the NRI plugin: connects procview's policy to the runtime, either
 * through the runtime's socket (external plugin) or through the socket the runtime
 * handed over when it launched us (pre-launched plugin, NRI_PLUGIN_SOCKET).
 */

import { join } from "node:path";
import { Socket } from "node:net";
import type { Logger } from "../core/log.ts";
import { makeRecordsPrivate } from "../core/registry.ts";
import type { PluginSettingsLayer } from "./config.ts";
import { observePlugin, type PluginObserver } from "./observed-plugin.ts";
import { acquireLock, lockFileName, requestRelease, watchHolder, type HeldLock, type LockHolder } from "./instance-lock.ts";
import { ProcviewPlugin } from "./procview-plugin.ts";
import { checkPluginIdentity, startStub, type NriStub, type StubTransport } from "../nri/stub.ts";

export interface NriPluginOptions {
  /** External mode: the runtime's NRI socket. */
  socketPath?: string;
  /** Pre-launched mode: the inherited socket fd (Node only). */
  socketFd?: number;
  name: string;
  index: string;
  mountpoint: string;
  stateDir: string;
  logger: Logger;
  /** Settings from --config FILE, below the runtime's Configure config (see config.ts). */
  fileSettings?: PluginSettingsLayer;
  /** Settings from flags, above every other source. */
  flagSettings?: PluginSettingsLayer;
  /** Told of the connection and of every event (status file, metrics). */
  observer?: PluginObserver;
  /** Ask the active plugin of this state dir to step down, and take over. */
  replace?: boolean;
}

export interface RunningNriPlugin {
  stop(): Promise<void>;
  /** Settles when the plugin is finished: stopped, or (pre-launched) the runtime closed our socket. */
  done: Promise<void>;
}

/** How long the active plugin may take to step down for --replace. */
const replaceTimeoutMs = 5000;
/** A waiting instance lets the lock's new owner (a replacement) take it first. */
const standbyRetryMs = 300;
/** A replaced instance competes for the lock again only after its replacement has surely taken it. */
const replacedRetryMs = 2000;
/** After an error taking the lock (e.g. an unwritable state dir), the next attempt. */
const lockErrorRetryMs = 5000;

/**
 * Starts the plugin. Only one plugin per state dir is active (instance-lock.ts): another
 * one waits, unregistered, until the active one is gone, then takes over; with
 * `replace` it asks the active one to step down first. A pre-launched plugin registers
 * at once whatever the lock says (containerd exits if a pre-launched plugin does not
 * register), and binds nothing until it holds the lock.
 */
export async function runNriPlugin(o: NriPluginOptions): Promise<RunningNriPlugin> {
  checkPluginIdentity(o.name, o.index);
  const transport = transportOf(o);
  const logger = o.logger;
  let active = false;
  const plugin = observePlugin(
    new ProcviewPlugin({
      mountpoint: o.mountpoint,
      stateDir: o.stateDir,
      logger,
      fileSettings: o.fileSettings,
      flagSettings: o.flagSettings,
      isActive: () => active,
    }),
    o.observer,
  );
  const start = () => startStub({ name: o.name, index: o.index, logger, transport, plugin });
  const inherited = "socket" in transport;
  // A pre-launched plugin's socket cannot be reopened: it stays registered, active or not.
  let stub: NriStub | undefined = inherited ? start() : undefined;
  try {
    makeRecordsPrivate(o.stateDir);
  } catch (err) {
    // A pre-launched plugin must not fail before registering (containerd would exit): it waits for the lock below.
    if (!inherited) throw err;
    logger.error("cannot prepare the state dir", { stateDir: o.stateDir, error: err });
  }

  const lockPath = join(o.stateDir, lockFileName);
  const identity: LockHolder = { pid: process.pid, name: o.name, index: o.index, runtime: o.socketPath ?? "inherited" };
  let stopped = false;
  let wake: () => void = () => {};
  const stoppedSignal = new Promise<void>((resolve) => (wake = resolve));
  let held: HeldLock | undefined;
  /** Waits `ms`, or less if the plugin is stopped meanwhile. */
  const pause = async (ms: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), stoppedSignal]);
    clearTimeout(timer);
  };

  const becomeInactive = async () => {
    active = false;
    if (!inherited) {
      await stub?.stop();
      stub = undefined;
    }
  };

  const serve = async (): Promise<void> => {
    let replace = o.replace ?? false;
    let announcedWait = false;
    while (!stopped) {
      if (replace) {
        replace = false;
        const result = await requestRelease(lockPath, replaceTimeoutMs);
        if (result?.released) logger.info("the active procview NRI plugin stepped down for this one", { lock: lockPath, ...holderFields(result.holder) });
        else if (result) logger.error("cannot replace the active procview NRI plugin; waiting for it to exit", { lock: lockPath, reason: result.reason, ...holderFields(result.holder) });
      }
      const got = await acquireLock(lockPath, identity, {
        onReleaseRequest: async () => {
          logger.info("a replacement asked this plugin to step down; disconnecting from the NRI runtime", { lock: lockPath });
          await becomeInactive();
        },
      });
      if (stopped) {
        if ("held" in got) await got.held.release();
        return;
      }
      if ("held" in got) {
        held = got.held;
        active = true;
        announcedWait = false;
        logger.info("this is the active procview NRI plugin for its state dir", { lock: lockPath });
        if (!inherited) stub = start();
        const loss = await Promise.race([held.lost, stoppedSignal.then(() => undefined)]);
        if (loss === undefined) return;
        held = undefined;
        await becomeInactive();
        if (loss === "released") logger.warn("replaced by another procview NRI plugin; standing by (stop this one when done)", { lock: lockPath });
        else logger.error("the plugin lock file was removed or replaced; standing by so that only one plugin is active", { lock: lockPath });
        await pause(replacedRetryMs);
        continue;
      }
      const watch = await watchHolder(lockPath);
      if (!announcedWait) {
        announcedWait = true;
        logger.warn(
          inherited
            ? "another procview NRI plugin is active for this state dir: registered, but binding nothing until it exits"
            : "another procview NRI plugin is active for this state dir: not registering until it exits (procview nri --replace takes over)",
          { lock: lockPath, ...holderFields(watch?.holder ?? ("heldBy" in got ? got.heldBy : undefined)) },
        );
      }
      if (watch) await Promise.race([watch.gone, stoppedSignal]);
      await pause(standbyRetryMs);
    }
  };

  const serving = (async () => {
    while (!stopped) {
      try {
        await serve();
      } catch (err) {
        logger.error("cannot take the single-plugin lock; binding nothing, retrying", { lock: lockPath, error: err, retryMs: lockErrorRetryMs });
        await becomeInactive();
        await pause(lockErrorRetryMs);
      }
    }
  })();
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      stopped = true;
      wake();
      await serving;
      active = false;
      await stub?.stop();
      await held?.release();
    })());
  const done = inherited ? stub!.done : stoppedSignal;
  return { stop, done: done.then(() => stopping) };
}

function holderFields(holder: LockHolder | undefined): Record<string, unknown> {
  if (!holder) return { activePlugin: "unknown: it does not answer" };
  return { activePid: holder.pid, activeName: `${holder.index}-${holder.name}`, activeRuntime: holder.runtime };
}

function transportOf(o: NriPluginOptions): StubTransport {
  if (o.socketFd !== undefined && o.socketPath !== undefined) {
    throw new Error("give either an NRI socket path or an inherited socket fd, not both");
  }
  if (o.socketFd === undefined) {
    if (!o.socketPath) throw new Error("no NRI socket path given");
    return { socketPath: o.socketPath };
  }
  return { socket: adoptSocketFd(o.socketFd) };
}

/** The socket the runtime passed as `fd`. */
export function adoptSocketFd(fd: number): Socket {
  if (!Number.isInteger(fd) || fd < 0) throw new Error(`invalid NRI socket fd ${fd}`);
  try {
    return new Socket({ fd, readable: true, writable: true });
  } catch (err) {
    if ("Deno" in globalThis) {
      throw new Error(
        `Deno cannot adopt the inherited NRI socket fd ${fd} (${(err as Error).message}): ` +
          "under Deno only the external mode (--socket PATH) works; run the pre-launched plugin with Node",
      );
    }
    throw new Error(`cannot adopt the inherited NRI socket fd ${fd}: ${(err as Error).message}`);
  }
}

/**
 * Entry point of the NRI plugin: connects procview's policy to the runtime, either
 * through the runtime's socket (external plugin) or through the socket the runtime
 * handed over when it launched us (pre-launched plugin, NRI_PLUGIN_SOCKET).
 */

import { Socket } from "node:net";
import type { Logger } from "../core/log.ts";
import { makeRecordsPrivate } from "../core/registry.ts";
import type { PluginSettingsLayer } from "./config.ts";
import { createProcviewPlugin } from "./procview-plugin.ts";
import { startStub, type StubTransport } from "./stub.ts";

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
}

export interface RunningNriPlugin {
  stop(): Promise<void>;
  /** Settles when the plugin is finished: stopped, or (pre-launched) the runtime closed our socket. */
  done: Promise<void>;
}

export async function runNriPlugin(o: NriPluginOptions): Promise<RunningNriPlugin> {
  makeRecordsPrivate(o.stateDir);
  const stub = startStub({
    name: o.name,
    index: o.index,
    logger: o.logger,
    transport: transportOf(o),
    plugin: createProcviewPlugin({
      mountpoint: o.mountpoint,
      stateDir: o.stateDir,
      logger: o.logger,
      fileSettings: o.fileSettings,
      flagSettings: o.flagSettings,
    }),
  });
  return { stop: () => stub.stop(), done: stub.done };
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

/**
 * `procview` entry point: parse the command line, start the FUSE server and/or the NRI
 * plugin, stop them cleanly on SIGTERM/SIGINT.
 */

import { readFileSync } from "node:fs";
// A namespace import: Deno's node:module lacks the compile cache functions.
import * as nodeModule from "node:module";
import { createLogger, type Logger, type LogLevel } from "../core/log.ts";
import { parseCommandLine, UsageError, type FuseSettings, type NriSettings } from "./args.ts";
import { startFuseServer } from "../fuse/daemon.ts";
import { startNativeFuseServer } from "../fuse/native/server.ts";
import { startLoadAverageSampling, type ProcviewTreeOptions } from "../fuse/procview-tree.ts";
import { createLoadAverageMemory } from "../fuse/views/loadavg.ts";
import { parsePluginConfig, type PluginSettingsLayer } from "../nri-plugin/config.ts";
import { runNriPlugin } from "../nri-plugin/main.ts";

interface Running {
  stop(): Promise<void>;
}

const procviewTree = new URL("../fuse/procview-tree.ts", import.meta.url).href;
/** Set once a signal asked us to stop, so parts ending on their own are told apart. */
let stopping = false;

async function startFuse(settings: FuseSettings, logger: Logger, logLevel: LogLevel): Promise<Running> {
  if (settings.backend === "fuse-native") {
    logger.warn(
      "--backend fuse-native: the LXCFS-compatible reader-pid layout (proc/meminfo … at the mount's root) is unavailable, " +
        "because fuse-native does not say which process reads; only containers/<id>/… is served",
      { mountpoint: settings.mountpoint },
    );
  }
  const startServer = settings.backend === "fuse-native" ? startNativeFuseServer : startFuseServer;
  const treeOptions = {
    stateDir: settings.stateDir,
    cpuLimitByQuota: settings.cpuLimitByQuota,
    logLevel,
    // One set of load averages for every worker thread, sampled here on the main thread.
    loadAverageMemory: createLoadAverageMemory(),
  } satisfies ProcviewTreeOptions;
  const server = await startServer({
    mountpoint: settings.mountpoint,
    stateDir: settings.stateDir,
    treeModule: procviewTree,
    treeOptions,
    workers: settings.workers,
    // The launcher's (bin/procview.js), if it enabled one: serving threads reuse it too.
    compileCacheDir: nodeModule.getCompileCacheDir?.(),
    logger: logger.child({ component: "fuse" }),
  });
  const sampler = startLoadAverageSampling(treeOptions, logger.child({ component: "loadavg" }));
  // An unmount from outside ends the server: exit so a supervisor restarts it.
  void server.closed.then(() => {
    if (stopping) return;
    logger.warn("FUSE mount went away; exiting", { mountpoint: settings.mountpoint });
    process.exit(1);
  });
  return {
    stop: () => {
      sampler.stop();
      return server.stop();
    },
  };
}

/** The --config file's settings; a file that cannot be read or used is a usage error naming the key. */
function readConfigFile(path: string | undefined): PluginSettingsLayer {
  if (path === undefined) return {};
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as Error).message}`);
  }
  try {
    return parsePluginConfig(text);
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as Error).message}`);
  }
}

async function startNri(settings: NriSettings, fileSettings: PluginSettingsLayer, logger: Logger): Promise<Running> {
  const plugin = await runNriPlugin({ ...settings, fileSettings, logger: logger.child({ component: "nri" }) });
  // A pre-launched plugin whose socket the runtime closed can never be reached again;
  // exiting lets containerd launch a fresh one instead of leaving an orphan.
  if (settings.socketFd !== undefined) {
    void plugin.done.then(() => {
      if (stopping) return;
      logger.warn("the runtime closed the pre-launched plugin's socket; exiting");
      process.exit(1);
    });
  }
  return plugin;
}

async function main(argv: string[]): Promise<number> {
  let command;
  let fileSettings: PluginSettingsLayer = {};
  let ignoredConfigFile: Error | undefined;
  try {
    command = parseCommandLine(argv, process.env, "Deno" in globalThis ? "deno" : "node");
    if (command.kind === "nri" || command.kind === "run") {
      try {
        // Read before anything starts: a bad file stops the start, before a mount or a registration.
        fileSettings = readConfigFile(command.nri.configFile);
      } catch (err) {
        // Except when containerd launched us: exiting before registering makes containerd itself exit.
        if (command.nri.socketFd === undefined) throw err;
        ignoredConfigFile = err as Error;
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`procview: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (command.kind === "help") {
    process.stdout.write(command.text);
    return 0;
  }

  const logger = createLogger({ level: command.logLevel });
  if (ignoredConfigFile) logger.error("pre-launched plugin: ignoring the --config file, using the other settings", { error: ignoredConfigFile.message });
  const running: Running[] = [];
  const stopAll = async (signal: string) => {
    stopping = true;
    logger.info("stopping", { signal });
    for (const part of running.reverse()) await part.stop();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stopAll("SIGTERM"));
  process.once("SIGINT", () => void stopAll("SIGINT"));

  try {
    if (command.kind === "fuse" || command.kind === "run") running.push(await startFuse(command.fuse, logger, command.logLevel));
    if (command.kind === "nri" || command.kind === "run") running.push(await startNri(command.nri, fileSettings, logger));
  } catch (err) {
    logger.error("failed to start", { err });
    for (const part of running.reverse()) await part.stop().catch(() => {});
    return 1;
  }
  logger.info("running", { command: command.kind });
  return await new Promise<number>(() => {});
}

process.exitCode = await main(process.argv.slice(2));

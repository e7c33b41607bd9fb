/**
 * `procview` entry point: parse the command line, start the FUSE server and/or the NRI
 * plugin, stop them cleanly on SIGTERM/SIGINT.
 */

import { readFileSync } from "node:fs";
import { createLogger, type Logger, type LogLevel } from "../core/log.ts";
import { parseCommandLine, UsageError, type FuseSettings, type NriSettings } from "./args.ts";
import { startFuseServer } from "../fuse/daemon.ts";
import { startNativeFuseServer } from "../fuse/native/server.ts";
import { startLoadAverageSampling, type ProcviewTreeOptions } from "../fuse/procview-tree.ts";
import { createLoadAverageMemory } from "../fuse/views/loadavg.ts";
import { parsePluginConfig, type PluginSettingsLayer } from "../nri-plugin/config.ts";
import { runNriPlugin } from "../nri-plugin/main.ts";
import { version, versionText } from "../core/version.ts";
import { procviewTreeModule } from "./tree-module.ts";
import { startObservability, type Observability } from "./observability.ts";
import { MetricsAddressError } from "./metrics.ts";
import { runStatus } from "./status.ts";

interface Running {
  stop(): Promise<void>;
}

/** Set once a signal asked us to stop, so parts ending on their own are told apart. */
let stopping = false;

async function startFuse(settings: FuseSettings, logger: Logger, logLevel: LogLevel, observability: Observability): Promise<Running> {
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
    viewStats: observability.viewStats,
  } satisfies ProcviewTreeOptions;
  const server = await startServer({
    mountpoint: settings.mountpoint,
    stateDir: settings.stateDir,
    treeModule: procviewTreeModule,
    treeOptions,
    workers: settings.workers,
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

async function startNri(settings: NriSettings, fileSettings: PluginSettingsLayer, logger: Logger, observability: Observability): Promise<Running> {
  const plugin = await runNriPlugin({ ...settings, fileSettings, logger: logger.child({ component: "nri" }), observer: observability.pluginObserver });
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
  const runtime = "Deno" in globalThis ? "deno" : "node";
  if (command.kind === "version") {
    process.stdout.write(versionText(runtime, runtime === "deno" ? process.versions.deno! : process.versions.node));
    return 0;
  }
  if (command.kind === "status") return await runStatus(command.stateDir, command.json);

  const logger = createLogger({ level: command.logLevel });
  // The first line of every log says which procview wrote it.
  logger.info("procview starting", { version, command: command.kind, runtime, pid: process.pid });
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
    const observability = await startObservability(command, logger);
    running.push(observability);
    if (command.kind === "fuse" || command.kind === "run") running.push(await startFuse(command.fuse, logger, command.logLevel, observability));
    if (command.kind === "nri" || command.kind === "run") running.push(await startNri(command.nri, fileSettings, logger, observability));
  } catch (err) {
    if (err instanceof MetricsAddressError) {
      process.stderr.write(`procview: ${err.message}\n`);
      for (const part of running.reverse()) await part.stop().catch(() => {});
      return 2;
    }
    logger.error("failed to start", { err });
    for (const part of running.reverse()) await part.stop().catch(() => {});
    return 1;
  }
  logger.info("running", { command: command.kind });
  return await new Promise<number>(() => {});
}

// No top-level await: the single executable runs this module as CommonJS.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

/**
 * `procview` entry point: parse the command line, start the FUSE server and/or the NRI
 * plugin, stop them cleanly on SIGTERM/SIGINT.
 */

import { readFileSync } from "node:fs";
// A namespace import: Deno's node:module lacks the compile cache functions.
import * as nodeModule from "node:module";
import { createLogger, type Logger, type LogLevel } from "../core/log.ts";
import { parseCommandLine, UsageError, type FuseSettings, type NriSettings } from "./args.ts";
import { startFuseServer, type FuseServer } from "../fuse/daemon.ts";
import { startNativeFuseServer } from "../fuse/native/server.ts";
import { startLoadAverageSampling, type ProcviewTreeOptions } from "../views/procview-tree.ts";
import { createLoadAverageMemory } from "../views/loadavg-sampler.ts";
import { parsePluginConfig, type PluginSettingsLayer } from "../nri-plugin/config.ts";
import { version, versionText } from "../core/version.ts";
import { procviewTreeModule } from "./tree-module.ts";
import { startObservability, type Observability } from "./observability.ts";
import { MetricsAddressError } from "./metrics-address-error.ts";
import { runStatus } from "./status.ts";
import { statfsStillWaiting } from "../core/fuse-status.ts";
import { giveBackStartupPages, startupPagesDelayMs } from "../core/startup-pages.ts";
import { startNativeHeapTrimming } from "../core/native-heap.ts";

interface Running {
  stop(): Promise<void>;
}

/** Set once a signal asked us to stop, so parts ending on their own are told apart. */
let stopping = false;

/** Called once a successor serves our FUSE connection: nothing of it is ours to stop any more. */
type OnReplaced = (successor: number) => void;

async function startFuse(
  settings: FuseSettings,
  logger: Logger,
  logLevel: LogLevel,
  observability: Observability,
  onReplaced: OnReplaced,
): Promise<Running & Pick<FuseServer, "predecessor">> {
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
    // The launcher's (bin/procview.js), if it enabled one: serving threads reuse it too.
    compileCacheDir: nodeModule.getCompileCacheDir?.(),
    logger: logger.child({ component: "fuse" }),
    replace: settings.replace,
    // A successor takes the load averages over with the connection, so they go on from where they were.
    treeState: treeOptions.loadAverageMemory,
  });
  const sampler = startLoadAverageSampling(treeOptions, logger.child({ component: "loadavg" }));
  void server.replaced.then((successor) => {
    // The successor samples the averages it took over from here on.
    sampler.stop();
    onReplaced(successor);
  });
  // An unmount from outside ends the server: exit so a supervisor restarts it.
  void server.closed.then(() => {
    if (stopping) return;
    logger.warn("FUSE mount went away; exiting", { mountpoint: settings.mountpoint });
    process.exit(1);
  });
  return {
    predecessor: server.predecessor,
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
  // Loaded here: the NRI codec (protobufjs and the parsed protos) is no part of a FUSE server's memory.
  const { runNriPlugin } = await import("../nri-plugin/main.ts");
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

/** Waits (bounded) for the process we took over from to exit, so that its NRI plugin is gone before ours registers. */
async function predecessorGone(pid: number, logger: Logger): Promise<void> {
  const deadline = Date.now() + predecessorExitTimeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  logger.warn("the replaced process has not exited; starting the NRI plugin anyway", { pid });
}
const predecessorExitTimeoutMs = 30_000;

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
    exitNow(logger);
  };
  process.once("SIGTERM", () => void stopAll("SIGTERM"));
  process.once("SIGINT", () => void stopAll("SIGINT"));

  // Replaced by a successor. `fuse --on-replaced wait` idles until SIGTERM, leaving what
  // else runs here as it is; otherwise stop the rest (the NRI plugin of `run`: the
  // successor registers its own once we are gone) and exit.
  const onReplaced: OnReplaced = (successor) => {
    stopping = true;
    if (command.kind === "fuse" && command.fuse.onReplaced === "wait") {
      logger.info("replaced; waiting for SIGTERM", { successor });
      // The server held the event loop open; now nothing does until the signal.
      setInterval(() => {}, 2 ** 30);
      return;
    }
    void (async () => {
      // The replaced FUSE server's stop() has nothing left to do; a plugin unregisters.
      for (const part of [...running].reverse()) await part.stop().catch((err) => logger.error("stop failed", { err }));
      logger.info("replaced; exiting", { successor });
      exitNow(logger);
    })();
  };

  try {
    const observability = await startObservability(command, logger);
    running.push(observability);
    if (command.kind === "fuse" || command.kind === "run") {
      const fuse = await startFuse(command.fuse, logger, command.logLevel, observability, onReplaced);
      running.push(fuse);
      if (command.kind === "run" && fuse.predecessor !== undefined) await predecessorGone(fuse.predecessor, logger);
    }
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
  setTimeout(() => {
    giveBackStartupPages(logger);
    startNativeHeapTrimming(logger);
  }, startupPagesDelayMs).unref();
  return await new Promise<number>(() => {});
}

/** Exits 0, or by SIGKILL when a normal exit would wait for a FUSE server that does not answer. */
function exitNow(logger: Logger): never {
  if (statfsStillWaiting()) {
    logger.warn("a statfs of the FUSE mount still waits for a server that does not answer: exiting by SIGKILL");
    process.kill(process.pid, "SIGKILL");
  }
  process.exit(0);
}

// No top-level await: the single executable runs this module as CommonJS.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

/**
 * What a running procview tells the outside about itself: the plugin's status file (for
 * `procview status`), and with --metrics-address the /metrics, /healthz and /readyz
 * endpoints. Started before the FUSE server and the plugin, so that a metrics address in
 * use stops the start before anything is mounted or registered.
 */

import type { Server } from "node:http";
import type { Command } from "./args.ts";
import type { Logger } from "../core/log.ts";
import { clearPluginStatus, writePluginStatus, type PluginStatus } from "../core/plugin-status.ts";
import { readFuseStatus } from "../core/fuse-status.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { version } from "../core/version.ts";
import { createViewStats, type ViewStats } from "../views/view-stats.ts";
import { viewRenderers } from "../views/render/catalog.ts";
import type { PluginObserver } from "../nri-plugin/observed-plugin.ts";
import type { Check } from "./metrics.ts";

export type ServerCommand = Extract<Command, { kind: "fuse" | "nri" | "run" }>;

export interface Observability {
  /** For the FUSE tree options: where the worker threads count view reads (metrics on). */
  viewStats?: ViewStats;
  /** For the NRI plugin: keeps nri.json and the event counters. */
  pluginObserver: PluginObserver;
  stop(): Promise<void>;
}

export async function startObservability(command: ServerCommand, logger: Logger): Promise<Observability> {
  const stateDir = command.kind === "nri" ? command.nri.stateDir : command.fuse.stateDir;
  const hasPlugin = command.kind !== "fuse";
  const hasFuse = command.kind !== "nri";
  const viewStats = command.metricsAddress && hasFuse ? createViewStats([...viewRenderers.keys()]) : undefined;
  // Loaded only when asked for: prom-client and node:http add some 20 MiB to every process that loads them.
  const metricsModule = command.metricsAddress ? await import("./metrics.ts") : undefined;
  const metrics = metricsModule?.createMetrics({ countContainers: () => new ContainerRegistry(stateDir).ids().length, viewStats });

  let pluginStatus: PluginStatus | undefined;
  const updatePluginStatus = (change: Partial<PluginStatus>) => {
    if (!hasPlugin) return;
    const nri = "nri" in command ? command.nri : undefined;
    const connectedChanged = change.connected !== undefined && change.connected !== pluginStatus?.connected;
    pluginStatus = {
      pid: process.pid,
      version,
      name: nri?.name ?? "",
      index: nri?.index ?? "",
      connected: false,
      since: Date.now(),
      ...pluginStatus,
      ...change,
      ...(connectedChanged && { since: Date.now() }),
    };
    try {
      writePluginStatus(stateDir, pluginStatus);
    } catch (err) {
      logger.warn("cannot write the plugin status file", { stateDir, err });
    }
  };
  updatePluginStatus({ connected: false });
  const pluginObserver: PluginObserver = {
    configured: (runtime) => updatePluginStatus({ runtime }),
    synchronized: () => updatePluginStatus({ connected: true }),
    closed: () => updatePluginStatus({ connected: false }),
    event: (name, result, seconds) => metrics?.nriEvent(name, result, seconds),
  };

  let server: Server | undefined;
  if (command.metricsAddress && metricsModule && metrics) {
    const { allOf, mountAnswersCheck, startMetricsServer } = metricsModule;
    const mountAnswers: Check | undefined = command.kind === "nri" ? undefined : mountAnswersCheck(command.fuse.mountpoint);
    const pluginRegistered: Check = async () =>
      pluginStatus?.connected
        ? { ok: true, detail: `the plugin is registered with ${pluginStatus.runtime?.name ?? "the runtime"}` }
        : { ok: false, detail: "the plugin is not registered with the runtime" };
    const loopAnswers: Check = async () => ({ ok: true, detail: "the plugin's event loop answers" });
    // After a --replace handover the old server's mount still answers, but a successor serves it.
    const thisProcessServes: Check = async () =>
      readFuseStatus(stateDir)?.pid === process.pid
        ? { ok: true, detail: "this process serves the mount" }
        : { ok: false, detail: "another process serves the mount (this one was replaced or has not taken over yet)" };
    server = await startMetricsServer(command.metricsAddress, {
      metrics,
      // Liveness: the FUSE request loop answers (a readdir of the mount); for the plugin alone, its event loop.
      healthz: mountAnswers ?? loopAnswers,
      readyz: allOf([...(mountAnswers ? [mountAnswers, thisProcessServes] : []), ...(hasPlugin ? [pluginRegistered] : [])]),
    });
    logger.info("serving metrics", { address: `${command.metricsAddress.host}:${command.metricsAddress.port}`, paths: ["/metrics", "/healthz", "/readyz"] });
  }
  return {
    viewStats,
    pluginObserver,
    async stop() {
      if (hasPlugin) clearPluginStatus(stateDir, process.pid);
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

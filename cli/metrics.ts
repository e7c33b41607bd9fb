/**
 * --metrics-address: Prometheus text at /metrics, liveness at /healthz, readiness at
 * /readyz, served by the main thread of `procview fuse`, `nri` or `run`. prom-client keeps
 * the process metrics and the counters of the main thread (NRI events, errors); view reads
 * are counted by the FUSE worker threads in shared memory (views/view-stats.ts) and printed
 * beside them at each scrape.
 */

import { createServer, type Server } from "node:http";
import { readdir } from "node:fs/promises";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { MetricsAddressError } from "./metrics-address-error.ts";
import type { MetricsAddress } from "./args.ts";
import { failedViewReads, renderViewMetrics, snapshotViewStats, type ViewStats } from "../views/view-stats.ts";
import type { EventResult } from "../nri-plugin/observed-plugin.ts";

/** A yes/no answer with the reason for a no, for /healthz and /readyz bodies. */
export type Check = () => Promise<{ ok: boolean; detail: string }>;

export interface ProcviewMetrics {
  registry: Registry;
  nriEvent(event: string, result: EventResult, seconds: number): void;
  error(kind: string): void;
  /** The text /metrics answers. */
  text(): Promise<string>;
}

export function createMetrics(options: { countContainers: () => number; viewStats?: ViewStats }): ProcviewMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const nriEvents = new Counter({
    name: "procview_nri_events_total",
    help: "NRI events handled by the plugin, by event and result.",
    labelNames: ["event", "result"],
    registers: [registry],
  });
  // From half a millisecond (a CreateContainer answered from memory) to containerd's 2 s deadline.
  const nriEventSeconds = new Histogram({
    name: "procview_nri_event_duration_seconds",
    help: "How long the plugin's handler took per NRI event: its own share of what the runtime waits for.",
    labelNames: ["event"],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
    registers: [registry],
  });
  const errorCounts = new Map<string, number>();
  const viewStats = options.viewStats;
  new Counter({
    name: "procview_errors_total",
    help: "Errors by kind: view_render (a view answered EIO or ENOENT), nri_event (a plugin handler failed).",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      this.reset();
      if (viewStats) this.inc({ kind: "view_render" }, failedViewReads(snapshotViewStats(viewStats)));
      for (const [kind, count] of errorCounts) this.inc({ kind }, count);
    },
  });
  new Gauge({
    name: "procview_containers",
    help: "Containers recorded in the state dir by the NRI plugin.",
    registers: [registry],
    collect() {
      this.set(options.countContainers());
    },
  });
  const error = (kind: string) => errorCounts.set(kind, (errorCounts.get(kind) ?? 0) + 1);
  return {
    registry,
    nriEvent(event, result, seconds) {
      nriEvents.inc({ event, result });
      nriEventSeconds.observe({ event }, seconds);
      if (result === "error") error("nri_event");
    },
    error,
    async text() {
      const views = viewStats ? renderViewMetrics(snapshotViewStats(viewStats)) : "";
      return (await registry.metrics()) + views;
    },
  };
}

export const probeTimeoutMs = 2000;

/**
 * Whether the FUSE mount answers a readdir within the timeout. At most one readdir is in
 * flight: a hung server must not pile up blocked threads in libuv's pool, one per probe.
 */
export function mountAnswersCheck(mountpoint: string): Check {
  let pending: Promise<string | undefined> | undefined;
  return async () => {
    pending ??= readdir(mountpoint).then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    const inFlight = pending;
    void inFlight.finally(() => {
      if (pending === inFlight) pending = undefined;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), probeTimeoutMs)));
    const outcome = await Promise.race([inFlight, timedOut]).finally(() => clearTimeout(timer));
    if (outcome === "timeout") return { ok: false, detail: `the mount at ${mountpoint} did not answer in ${probeTimeoutMs} ms` };
    if (outcome !== undefined) return { ok: false, detail: `the mount at ${mountpoint} answered ${outcome}` };
    return { ok: true, detail: `the mount at ${mountpoint} answers` };
  };
}

/** Every check must pass; the body lists each one's detail. */
export function allOf(checks: Check[]): Check {
  return async () => {
    const results = await Promise.all(checks.map((check) => check()));
    return { ok: results.every((r) => r.ok), detail: results.map((r) => r.detail).join("\n") };
  };
}

/** Listens on `address`; an address in use rejects with a message naming the flag. */
export async function startMetricsServer(
  address: MetricsAddress,
  routes: { metrics: ProcviewMetrics; healthz: Check; readyz: Check },
): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    const answer = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      response.writeHead(status, { "content-type": type });
      response.end(body);
    };
    const check = (run: Check) =>
      run().then(
        ({ ok, detail }) => answer(ok ? 200 : 503, `${ok ? "ok" : "not ok"}\n${detail}\n`),
        (err: Error) => answer(503, `not ok\n${err.message}\n`),
      );
    if (request.method !== "GET" && request.method !== "HEAD") return answer(405, "GET only\n");
    if (path === "/metrics") {
      return void routes.metrics.text().then(
        (text) => answer(200, text, routes.metrics.registry.contentType),
        (err: Error) => answer(500, `${err.message}\n`),
      );
    }
    if (path === "/healthz") return void check(routes.healthz);
    if (path === "/readyz") return void check(routes.readyz);
    answer(404, "not found: /metrics, /healthz, /readyz\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const where = `--metrics-address ${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`;
      if (err.code === "EADDRINUSE") reject(new MetricsAddressError(`${where}: the address is already in use (another process listens there)`));
      else if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND") reject(new MetricsAddressError(`${where}: no such local address (${err.code})`));
      else reject(new MetricsAddressError(`${where}: ${err.message}`));
    });
    server.listen(address.port, address.host, () => resolve());
  });
  // Scrapes must not keep a stopping process alive.
  server.unref();
  return server;
}

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { createViewStats, recordViewRead } from "../views/view-stats.ts";
import { allOf, createMetrics, startMetricsServer } from "./metrics.ts";
import { MetricsAddressError } from "./metrics-address-error.ts";

test("the /metrics text: NRI events, errors by kind, containers, view reads and process metrics", async () => {
  const viewStats = createViewStats(["proc/meminfo"]);
  recordViewRead(viewStats, "proc/meminfo", "containers", 0.001, true);
  const metrics = createMetrics({ countContainers: () => 7, viewStats });
  metrics.nriEvent("create_container", "ok", 0.0008);
  metrics.nriEvent("create_container", "ok", 0.003);
  metrics.nriEvent("synchronize", "error", 0.02);
  const text = await metrics.text();
  assert.match(text, /^procview_nri_event_duration_seconds_bucket\{le="0\.0005",event="create_container"\} 0$/m);
  assert.match(text, /^procview_nri_event_duration_seconds_bucket\{le="0\.001",event="create_container"\} 1$/m);
  assert.match(text, /^procview_nri_event_duration_seconds_bucket\{le="0\.005",event="create_container"\} 2$/m);
  assert.match(text, /^procview_nri_event_duration_seconds_sum\{event="create_container"\} 0\.0038$/m);
  assert.match(text, /^procview_nri_event_duration_seconds_count\{event="synchronize"\} 1$/m);
  assert.match(text, /^procview_nri_events_total\{event="create_container",result="ok"\} 2$/m);
  assert.match(text, /^procview_nri_events_total\{event="synchronize",result="error"\} 1$/m);
  assert.match(text, /^procview_errors_total\{kind="nri_event"\} 1$/m);
  assert.match(text, /^procview_errors_total\{kind="view_render"\} 1$/m);
  assert.match(text, /^procview_containers 7$/m);
  assert.match(text, /^procview_view_reads_total\{view="proc\/meminfo",layout="containers"\} 1$/m);
  assert.match(text, /^process_resident_memory_bytes \d+$/m);
  // Scraped twice, collected counters do not double.
  assert.match(await metrics.text(), /^procview_errors_total\{kind="view_render"\} 1$/m);
});

test("the endpoints answer; an address in use fails naming the flag", async (t) => {
  const metrics = createMetrics({ countContainers: () => 0 });
  const ready = { ok: false };
  const server = await startMetricsServer({ host: "127.0.0.1", port: 0 }, {
    metrics,
    healthz: async () => ({ ok: true, detail: "loop answers" }),
    readyz: allOf([async () => ({ ok: ready.ok, detail: "registered?" }), async () => ({ ok: true, detail: "mount answers" })]),
  });
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return [response.status, await response.text()] as const;
  };
  assert.deepEqual(await get("/healthz"), [200, "ok\nloop answers\n"]);
  assert.deepEqual(await get("/readyz"), [503, "not ok\nregistered?\nmount answers\n"]);
  ready.ok = true;
  assert.equal((await get("/readyz"))[0], 200);
  const [status, body] = await get("/metrics");
  assert.equal(status, 200);
  assert.match(body, /^procview_containers 0$/m);
  assert.equal((await get("/other"))[0], 404);

  const occupied = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => occupied.once("listening", resolve));
  t.after(() => occupied.close());
  const busy = (occupied.address() as { port: number }).port;
  await assert.rejects(
    startMetricsServer({ host: "127.0.0.1", port: busy }, { metrics, healthz: async () => ({ ok: true, detail: "" }), readyz: async () => ({ ok: true, detail: "" }) }),
    (err: Error) => err instanceof MetricsAddressError && err.message === `--metrics-address 127.0.0.1:${busy}: the address is already in use (another process listens there)`,
  );
});

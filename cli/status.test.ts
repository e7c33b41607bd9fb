import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFuseStatus, readFuseStatus } from "../core/fuse-status.ts";
import { writePluginStatus, readPluginStatus } from "../core/plugin-status.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { bindStateOf, collectStatus, problemsOf, renderStatusText, type StatusHost } from "./status.ts";

// mountinfo lines as the kernel prints them: the live procview mount is device 0:99.
const hostMountinfo = [
  "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
  "99 25 0:99 / /var/lib/procview rw,nosuid,nodev,relatime shared:50 - fuse.procview procview rw,user_id=0,group_id=0",
].join("\n");
const viewBind = (target: string, device: string) => `${target.length} 1 ${device} /containers/c/${target} ${target} ro,relatime - fuse.procview procview rw`;
const servedContainer = [viewBind("/proc/meminfo", "0:99"), viewBind("/proc/cpuinfo", "0:99")].join("\n");
const staleContainer = [viewBind("/proc/meminfo", "0:77")].join("\n");
const bareContainer = "1 0 0:40 / / rw - overlay overlay rw";

function fixture(): { dir: string; host: StatusHost } {
  const dir = mkdtempSync(join(tmpdir(), "procview-status-"));
  writeFuseStatus(dir, { pid: 100, mountpoint: "/var/lib/procview", startedAt: 1_000 });
  writePluginStatus(dir, { pid: 200, version: "0.1.0", name: "procview", index: "10", connected: true, runtime: { name: "containerd", version: "1.7.24" }, since: 2_000 });
  const registry = new ContainerRegistry(dir);
  const pidOf: Record<string, number | undefined> = { "/pods/a": 1, "/pods/b": 2, "/pods/c": 3, "/pods/d": undefined };
  for (const [id, cgroupPath] of [["aaa", "/pods/a"], ["bbb", "/pods/b"], ["ccc", "/pods/c"], ["ddd", "/pods/d"]]) {
    registry.put({ id: id!, cgroupPath: cgroupPath!, name: `ctr-${id}`, pod: { name: `pod-${id}`, namespace: "default" }, recordedAt: 0 });
  }
  const mountinfoOf: Record<number, string> = { 1: servedContainer, 2: staleContainer, 3: bareContainer };
  const host: StatusHost = {
    exists: () => true,
    readFuseStatus,
    readPluginStatus,
    isAlive: (pid) => pid === 100 || pid === 200,
    mountinfo: (pid) => (pid === "self" ? hostMountinfo : mountinfoOf[pid]),
    mountAnswers: async () => ({ answers: true }),
    pidOf: (cgroupPath) => pidOf[cgroupPath],
    records: (stateDir) => {
      const r = new ContainerRegistry(stateDir);
      return r.ids().flatMap((id) => r.get(id) ?? []);
    },
  };
  return { dir, host };
}

test("bindStateOf tells served, stale, missing and exited containers apart", () => {
  assert.equal(bindStateOf(servedContainer, "0:99"), "served");
  assert.equal(bindStateOf(staleContainer, "0:99"), "stale");
  assert.equal(bindStateOf(servedContainer, undefined), "stale");
  assert.equal(bindStateOf(bareContainer, "0:99"), "missing");
  assert.equal(bindStateOf(undefined, "0:99"), "exited");
});

test("status of a fixture state dir: the server, the plugin and each container's binds", async (t) => {
  const { dir, host } = fixture();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const report = await collectStatus(dir, host);
  assert.deepEqual(report.fuse, { pid: 100, mountpoint: "/var/lib/procview", startedAt: 1_000, alive: true, mounted: true, answers: true });
  assert.equal(report.plugin?.connected, true);
  assert.deepEqual(
    report.containers.map((c) => [c.id, c.binds, c.pod]).sort(),
    [["aaa", "served", "default/pod-aaa"], ["bbb", "stale", "default/pod-bbb"], ["ccc", "missing", "default/pod-ccc"], ["ddd", "exited", "default/pod-ddd"]],
  );
  assert.deepEqual(problemsOf(report), [
    "1 container(s) bind views of a procview mount that is gone (restart them)",
    "1 recorded container(s) have no views bound",
  ]);
  const text = renderStatusText(report, 62_000);
  assert.match(text, /^FUSE server: pid 100 \(running\), mountpoint \/var\/lib\/procview, answers, up 61s$/m);
  assert.match(text, /^NRI plugin: pid 200 \(running\), procview 0\.1\.0, connected to containerd 1\.7\.24 for 60s$/m);
  assert.match(text, /^containers: 4 recorded, 1 served, 1 stale, 1 missing, 1 exited$/m);
  assert.match(text, /^  stale   bbb ctr-bbb \(pod default\/pod-bbb\)$/m);
  assert.match(text, /^unhealthy:$/m);
});

test("healthy only when the mount answers, the plugin is connected and no binds are stale or missing", async (t) => {
  const { dir, host } = fixture();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(dir);
  registry.remove("bbb");
  registry.remove("ccc");
  const healthy = await collectStatus(dir, host);
  assert.deepEqual(problemsOf(healthy), []);
  assert.match(renderStatusText(healthy, 3_000), /\nhealthy\n$/);

  const hung = await collectStatus(dir, { ...host, mountAnswers: async () => ({ answers: false, error: "no answer in 2000 ms" }) });
  assert.deepEqual(problemsOf(hung), ["the mount at /var/lib/procview does not answer (no answer in 2000 ms)"]);

  const deadServer = await collectStatus(dir, { ...host, isAlive: (pid) => pid === 200 });
  assert.deepEqual(problemsOf(deadServer), ["FUSE server pid 100 is gone", "1 container(s) bind views of a procview mount that is gone (restart them)"]);

  writePluginStatus(dir, { pid: 200, version: "0.1.0", name: "procview", index: "10", connected: false, since: 0 });
  assert.deepEqual(problemsOf(await collectStatus(dir, host)), ["the NRI plugin is not connected to the runtime"]);
});

test("a missing state dir: no procview running there", async () => {
  const report = await collectStatus("/nonexistent/procview", { exists: () => false } as unknown as StatusHost);
  assert.deepEqual(problemsOf(report), ["no procview running there: /nonexistent/procview does not exist"]);
  assert.equal(renderStatusText(report, 0), "procview: no procview running there: /nonexistent/procview does not exist\n");
});

test("a state dir without status files has neither server nor plugin", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "procview-status-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const other = fixture();
  t.after(() => rmSync(other.dir, { recursive: true, force: true }));
  const report = await collectStatus(dir, other.host);
  assert.deepEqual(problemsOf(report), ["no FUSE server: no fuse.json in the state dir", "no NRI plugin: no nri.json in the state dir"]);
});

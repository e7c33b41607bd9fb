/**
 * The plugin's per-container choices and its life cycle on the real stack: a private
 * containerd 1.7 with NRI, `procview fuse` and `procview nri` started through the CLI,
 * pods made through the CRI as kubelet makes them. Needs root and /dev/fuse; the harness
 * fetches containerd and runc on first use.
 *
 * The leak test's scale (100 cycles) is what CI affords; PROCVIEW_LEAK_CYCLES runs the
 * long version by hand and prints its figures.
 */

import assert from "node:assert/strict";
import { readFileSync, statfsSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ContainerRegistry } from "../core/registry.ts";
import { startContainerd, type Containerd } from "../integration/containerd.ts";
import { connectCri, type ContainerResources, type CriClient } from "../integration/cri.ts";
import { startProcviewFuse, startProcviewNri, type ProcviewFuse, type ProcviewProcess } from "../integration/procview-process.ts";

const mebibyte = 1024 * 1024;

let dir: string;
let containerd: Containerd | undefined;
let cri: CriClient | undefined;
let fuse: ProcviewFuse | undefined;
let plugin: ProcviewProcess | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "procview-lifecycle-"));
  const shared = join(dir, "shared");
  await mkdir(shared);
  // The FUSE mount is made below `shared` after containerd's namespace exists (see integration/containerd.ts).
  containerd = await startContainerd({ sharedDirs: [shared] });
  cri = connectCri(containerd.criAddress);
  fuse = await startProcviewFuse({ dir: shared });
  plugin = await startProcviewNri({
    socket: containerd.nriSocket,
    mountpoint: fuse.mountpoint,
    stateDir: fuse.stateDir,
    logFile: join(dir, "nri.log"),
  });
});

after(async () => {
  await cri?.teardown().catch(() => {});
  cri?.close();
  await plugin?.stop();
  await fuse?.stop();
  await containerd?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function runPod(name: string, annotations: Record<string, string> = {}): Promise<string> {
  return await cri!.runPod({ name, uid: `uid-${name}`, namespace: "procview-lifecycle", cgroupParent: containerd!.cgroupParent, annotations });
}

async function runBusybox(podId: string, name: string, resources: ContainerResources = {}): Promise<string> {
  const id = await cri!.createContainer(podId, { name, image: containerd!.images.busybox, command: ["sleep", "3600"], ...resources });
  await cri!.startContainer(id);
  return id;
}

async function exec(id: string, command: string[]): Promise<string> {
  const result = await cri!.execSync(id, command, 10);
  assert.equal(result.exitCode, 0, `${command.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

async function until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const firstLine = (text: string) => text.split("\n")[0];

test("UpdateContainerResources with a new memory limit shows in the next read of /proc/meminfo", async () => {
  const id = await runBusybox(await runPod("update"), "busybox", { memoryLimitBytes: 50 * mebibyte });
  assert.equal(firstLine(await exec(id, ["cat", "/proc/meminfo"])), "MemTotal:          51200 kB");
  await cri!.updateContainerResources(id, { memoryLimitBytes: 80 * mebibyte });
  assert.equal(firstLine(await exec(id, ["cat", "/proc/meminfo"])), "MemTotal:          81920 kB");
  assert.ok(
    plugin!.records().some((r) => r.msg === "binding procview views" && r.containerId === id),
    "the views came from the plugin",
  );
});

test("annotations choose a container's views and its CPU count by quota", async () => {
  const hostCpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const podId = await runPod("chosen", {
    "views.procview.noderesource.dev/container.mem-only": "meminfo",
    "cpu-by-quota.procview.noderesource.dev/container.by-quota": "true",
  });
  const oneCpuOfQuota = { memoryLimitBytes: 50 * mebibyte, cpusetCpus: "0-1", cpuQuota: 100_000, cpuPeriod: 100_000 };
  const memOnly = await runBusybox(podId, "mem-only", oneCpuOfQuota);
  const byQuota = await runBusybox(podId, "by-quota", oneCpuOfQuota);
  const byCpuset = await runBusybox(podId, "by-cpuset", oneCpuOfQuota);

  assert.equal(firstLine(await exec(memOnly, ["cat", "/proc/meminfo"])), "MemTotal:          51200 kB");
  const boundInMemOnly = (await exec(memOnly, ["cat", "/proc/self/mountinfo"])).split("\n").map((line) => line.split(" ")[4]);
  assert.ok(!boundInMemOnly.includes("/proc/cpuinfo") && !boundInMemOnly.includes("/sys/devices/system/cpu/online"));
  assert.equal(await exec(memOnly, ["cat", "/proc/cpuinfo"]), hostCpuinfo);

  assert.equal(await exec(byQuota, ["cat", "/sys/devices/system/cpu/online"]), "0\n");
  assert.equal(await exec(byQuota, ["grep", "-c", "^processor", "/proc/cpuinfo"]), "1\n");
  assert.equal(await exec(byCpuset, ["cat", "/sys/devices/system/cpu/online"]), "0-1\n");
  const registry = new ContainerRegistry(fuse!.stateDir);
  assert.equal(registry.get(byQuota)?.cpuLimitByQuota, true);
  assert.equal(registry.get(byCpuset)?.cpuLimitByQuota, undefined);
});

test("a malformed annotation: the container starts with the default views, and the warning names pod and annotation", async () => {
  const podId = await runPod("typo", { "views.procview.noderesource.dev/pod": "meminfo,memstat" });
  const id = await runBusybox(podId, "busybox", { memoryLimitBytes: 50 * mebibyte, cpusetCpus: "0" });
  assert.equal(await exec(id, ["cat", "/sys/devices/system/cpu/online"]), "0\n", "every view is bound");
  const warning = plugin!.records().find((r) => r.level === "warn" && r.containerId === id);
  assert.equal(warning?.pod, "typo");
  assert.equal(warning?.annotation, "views.procview.noderesource.dev/pod");
  assert.match(String(warning?.reason), /unknown view "memstat"/);
});

/** Resident memory of a process, from /proc/<pid>/status. */
function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  if (line === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(line.split(/\s+/)[1]) * 1024;
}

/** The FUSE server's live nodes: its STATFS answers the node table's size as the files count. */
function liveNodes(): number {
  return Number(statfsSync(fuse!.mountpoint).files);
}

/**
 * Drops the kernel's cached dentries and inodes, so it FORGETs every node no mount or open
 * file holds. Without it the kernel keeps the view dentries of removed containers until
 * it needs the memory, and the server must keep their nodes meanwhile (measured: ~16 KiB
 * of FUSE server RSS per container, flat when the cache is dropped every 100 cycles).
 */
function dropKernelCaches(): void {
  writeFileSync("/proc/sys/vm/drop_caches", "2");
}

async function settledLiveNodes(): Promise<number> {
  dropKernelCaches();
  let previous = -1;
  let current = liveNodes();
  // FORGETs arrive asynchronously: wait until two reads 200 ms apart agree.
  while (current !== previous) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    previous = current;
    current = liveNodes();
  }
  return current;
}

async function createRemoveCycles(podId: string, first: number, count: number): Promise<void> {
  for (let i = first; i < first + count; i++) {
    const id = await runBusybox(podId, `cycle-${i}`, { memoryLimitBytes: 50 * mebibyte });
    // Reading a view makes the FUSE server build and hand out its nodes, as a real workload does.
    assert.equal(firstLine(await exec(id, ["cat", "/proc/meminfo"])), "MemTotal:          51200 kB");
    await cri!.stopContainer(id, 0);
    await cri!.removeContainer(id);
  }
}

test("create/remove cycles through containerd leave no records, no node-table growth and bounded RSS", async () => {
  const cycles = Number(process.env.PROCVIEW_LEAK_CYCLES ?? 100);
  const warmUp = 10;
  const registry = new ContainerRegistry(fuse!.stateDir);
  const podId = await runPod("cycles");
  const recordsBefore = registry.ids().length;
  // Warm up first: JIT, buffers and V8's heap reach their working size in the first cycles.
  await createRemoveCycles(podId, 0, warmUp);
  await until("the warm-up's records to go", () => registry.ids().length === recordsBefore);
  const nodesBefore = await settledLiveNodes();
  const pluginRssBefore = residentBytes(plugin!.pid);
  const fuseRssBefore = residentBytes(fuse!.pid);
  const started = Date.now();
  const fuseRssByBatch: number[] = [];

  // In batches, dropping the kernel's cache after each: the figures then measure procview's memory, not the dcache's.
  const batch = 100;
  for (let done = 0; done < cycles; done += batch) {
    await createRemoveCycles(podId, warmUp + done, Math.min(batch, cycles - done));
    dropKernelCaches();
    fuseRssByBatch.push(Math.round(residentBytes(fuse!.pid) / mebibyte));
  }

  await until("every cycle's record to go", () => registry.ids().length === recordsBefore);
  const seconds = (Date.now() - started) / 1000;
  const nodesAfter = await settledLiveNodes();
  const pluginGrowth = residentBytes(plugin!.pid) - pluginRssBefore;
  const fuseGrowth = residentBytes(fuse!.pid) - fuseRssBefore;
  const figures = { cycles, seconds, nodesBefore, nodesAfter, pluginRssBefore, pluginGrowth, fuseRssBefore, fuseGrowth, fuseRssMiBByBatch: fuseRssByBatch };
  process.stderr.write(`leak-test figures: ${JSON.stringify(figures)}\n`);

  assert.equal(registry.ids().length, recordsBefore);
  assert.ok(nodesAfter <= nodesBefore, `the FUSE node table grew from ${nodesBefore} to ${nodesAfter}`);
  // 16 MiB: V8's young generation alone may hold up to 16 MiB more or less between two samples
  // (measured growth: 2-3 MiB per 100 cycles, flat over 800); a leak of 170 KiB or more per
  // container fails it at 100 cycles, a smaller one needs the long run (PROCVIEW_LEAK_CYCLES).
  const bound = 16 * mebibyte;
  assert.ok(pluginGrowth < bound, `plugin RSS grew by ${(pluginGrowth / mebibyte).toFixed(1)} MiB`);
  assert.ok(fuseGrowth < bound, `FUSE server RSS grew by ${(fuseGrowth / mebibyte).toFixed(1)} MiB`);
  await cri!.stopPod(podId);
  await cri!.removePod(podId);
});

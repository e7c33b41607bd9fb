/**
 * The stub and the procview policy against the real containerd 1.7 (Debian trixie,
 * through the integration harness), pods made through the CRI as kubelet makes them.
 * Needs root; the harness downloads containerd and runc on first use.
 *
 * The FUSE server is replaced by a stand-in: a plain folder where the test writes each
 * recorded container's view file, because this file tests the plugin's side (binds,
 * records, reconnects). The real FUSE server is exercised in integration/procview.stack.test.ts.
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createLogger } from "../core/log.ts";
import { ContainerRegistry, type ContainerRecord } from "../core/registry.ts";
import { containerViewSource, viewFiles } from "../core/views.ts";
import { startContainerd, type Containerd } from "../integration/containerd.ts";
import { connectCri, type CriClient } from "../integration/cri.ts";
import { NriEvent, type SynchronizeRequest } from "../nri/api.ts";
import { ProcviewPlugin } from "./procview-plugin.ts";
import { startStub, type NriPlugin, type NriStub } from "../nri/stub.ts";

const standInMeminfo = "MemTotal:          12345 kB\n";

let dir: string;
let containerd: Containerd | undefined;
let cri: CriClient | undefined;
let stub: NriStub | undefined;
const logLines: string[] = [];
const syncs: SynchronizeRequest[] = [];
const removed: string[] = [];
let closes = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "procview-nri-it-"));
  const mountpoint = join(dir, "mnt");
  const stateDir = join(dir, "state");
  mkdirSync(mountpoint);
  containerd = await startContainerd();
  cri = connectCri(containerd.criAddress);
  const registry = new ContainerRegistry(stateDir);
  const logger = createLogger({ level: "debug", write: (line) => logLines.push(line) });
  const policy = new ProcviewPlugin({
    mountpoint,
    stateDir,
    logger,
    liveness: () => ({ live: true, status: { pid: process.pid, mountpoint, startedAt: 0 } }),
    store: {
      // The stand-in FUSE tree: serve a file for every recorded container.
      put: (record: ContainerRecord) => {
        registry.put(record);
        for (const view of viewFiles) {
          const file = containerViewSource(mountpoint, record.id, view);
          mkdirSync(join(file, ".."), { recursive: true });
          writeFileSync(file, standInMeminfo);
        }
      },
      remove: (id: string) => registry.remove(id),
    },
  });
  const plugin: NriPlugin = {
    configure: (request) => policy.configure(request),
    synchronize: (pods, containers) => {
      syncs.push({ pods, containers });
      return policy.synchronize(pods, containers);
    },
    createContainer: (request) => policy.createContainer(request),
    stateChangeEvents: policy.stateChangeEvents,
    stateChange: async (event) => {
      if (event.event === NriEvent.REMOVE_CONTAINER) removed.push(event.container?.id ?? "");
      await policy.stateChange(event);
    },
    onClose: () => void closes++,
  };
  stub = startStub({
    name: "procview",
    index: "10",
    plugin,
    logger,
    transport: { socketPath: containerd.nriSocket },
    reconnectDelayMs: { initial: 50, max: 500 },
  });
  await until("the first Synchronize", () => syncs.length === 1);
});

after(async () => {
  await stub?.stop();
  await cri?.teardown().catch(() => {});
  cri?.close();
  await containerd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeoutMs} ms; plugin log:\n${logLines.join("")}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function runBusybox(name: string, annotations: Record<string, string> = {}): Promise<{ podId: string; id: string }> {
  const podId = await cri!.runPod({ name, uid: `uid-${name}`, namespace: "procview-nri", cgroupParent: containerd!.cgroupParent, annotations });
  const id = await cri!.createContainer(podId, { name: "busybox", image: containerd!.images.busybox, command: ["sleep", "3600"] });
  await cri!.startContainer(id);
  return { podId, id };
}

async function meminfoIn(id: string): Promise<string> {
  const result = await cri!.execSync(id, ["cat", "/proc/meminfo"], 10);
  assert.equal(result.exitCode, 0, result.stderr);
  return result.stdout;
}

test("a container created through the CRI gets the view bound read-only and a registry record", async () => {
  const { id } = await runBusybox("first");
  assert.equal(await meminfoIn(id), standInMeminfo);
  const write = await cri!.execSync(id, ["sh", "-c", "echo x > /proc/meminfo"], 10);
  assert.notEqual(write.exitCode, 0);
  const record = new ContainerRegistry(join(dir, "state")).get(id);
  assert.equal(record?.cgroupPath, `${containerd!.cgroupParent}/${id}`);
  assert.equal(record?.pod?.namespace, "procview-nri");
});

test("after a containerd restart the plugin reconnects, re-syncs, and binds views again", async () => {
  const before = (await cri!.listContainers()).map((c) => c.id);
  await containerd!.restart();
  cri!.close();
  cri = connectCri(containerd!.criAddress);
  await until("the Synchronize after the restart", () => syncs.length === 2);
  assert.equal(closes, 1);
  // The runtime lists the containers that survived in their shims, with their cgroup paths.
  const synced = syncs[1].containers ?? [];
  for (const id of before) assert.ok(synced.some((c) => c.id === id && c.linux?.cgroups_path?.endsWith(id)), `sync lists ${id}`);
  const { id } = await runBusybox("after-restart");
  assert.equal(await meminfoIn(id), standInMeminfo);
});

test("removing a container reaches the plugin as REMOVE_CONTAINER and drops its record", async () => {
  const { podId, id } = await runBusybox("removed");
  await cri!.stopContainer(id, 0);
  assert.ok(new ContainerRegistry(join(dir, "state")).get(id), "a stopped container keeps its record");
  await cri!.removeContainer(id);
  await until("REMOVE_CONTAINER", () => removed.includes(id));
  assert.equal(new ContainerRegistry(join(dir, "state")).get(id), undefined);
  await cri!.stopPod(podId);
  await cri!.removePod(podId);
});

test("a pod annotation opting the container out leaves it the host's /proc/meminfo", async () => {
  const { id } = await runBusybox("opted-out", { "procview.noderesource.dev/container.busybox": "disabled" });
  const hostFirstLine = readFileSync("/proc/meminfo", "utf8").split("\n")[0];
  assert.equal((await meminfoIn(id)).split("\n")[0], hostFirstLine);
  assert.equal(new ContainerRegistry(join(dir, "state")).get(id), undefined);
});

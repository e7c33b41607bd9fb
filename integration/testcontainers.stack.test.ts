/**
 * procview through the Docker engine and testcontainers, the way users of plain Docker
 * (no NRI) would use it: LXCFS-style read-only binds of procview's files over /proc.
 *
 * Real components only: Debian's dockerd on a private socket (integration/docker.ts),
 * a busybox image built offline, testcontainers' GenericContainer, and procview's FUSE
 * server started through its CLI. Needs root, /dev/fuse and Debian's docker.io.
 * Docker's containers live in the host's mount namespace, so the FUSE mount only has to
 * exist before a container starts.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { StartedTestContainer } from "testcontainers";
import { viewFiles } from "../core/views.ts";
import { execOk, IdleBusyboxContainer, useEngineForTestcontainers } from "./docker-image.ts";
import { startDockerd, type Dockerd } from "./docker.ts";
import { startProcviewFuse, type ProcviewFuse } from "./procview-process.ts";

/** testcontainers takes GiB: 50/1024 GiB is exactly 52428800 bytes. */
const fiftyMiB = 50 / 1024;

let dockerd: Dockerd | undefined;
let procview: ProcviewFuse | undefined;
const started: StartedTestContainer[] = [];

before(async () => {
  dockerd = await startDockerd();
  await useEngineForTestcontainers(dockerd.dockerHost);
});

after(async () => {
  // Containers hold binds of FUSE files: stop them before the FUSE server.
  for (const container of started) await container.stop().catch(() => {});
  await procview?.stop();
  await dockerd?.stop();
});

async function startIdleContainer(configure: (container: IdleBusyboxContainer) => IdleBusyboxContainer): Promise<StartedTestContainer> {
  const container = await configure(new IdleBusyboxContainer()).start();
  started.push(container);
  return container;
}

test("without procview, a container limited to 50 MiB still sees the host's MemTotal", async () => {
  const container = await startIdleContainer((c) => c.withResourcesQuota({ memory: fiftyMiB }));

  const limit = await execOk(container, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
  assert.equal(limit.trim(), "52428800");
  const hostFirstLine = (await readFile("/proc/meminfo", "utf8")).split("\n")[0];
  const containerFirstLine = await execOk(container, ["head", "-n", "1", "/proc/meminfo"]);
  assert.equal(containerFirstLine, hostFirstLine + "\n");
});

test("with procview's LXCFS-style views bound read-only, a container sees its own limits", async (t) => {
  procview = await startProcviewFuse();
  const binds = viewFiles.map((view) => ({
    source: join(procview!.mountpoint, view.path),
    target: view.target,
    // A writable bind would let the container write through to the FUSE file.
    mode: "ro" as const,
  }));
  const startedAt = Date.now();
  const container = await startIdleContainer((c) =>
    c.withResourcesQuota({ memory: fiftyMiB }).withCpusetCpus("0").withBindMounts(binds),
  );

  await t.test("meminfo shows the 50 MiB limit as MemTotal", async () => {
    const firstLine = await execOk(container, ["head", "-n", "1", "/proc/meminfo"]);
    assert.match(firstLine, /^MemTotal:\s+51200 kB\n$/);
  });

  await t.test("cpuinfo lists only the one CPU of the cpuset", async () => {
    assert.ok(viewFiles.some((view) => view.target === "/proc/cpuinfo"), "procview binds /proc/cpuinfo");
    const processors = await execOk(container, ["grep", "^processor", "/proc/cpuinfo"]);
    assert.match(processors, /^processor\s*: 0\n$/);
  });

  await t.test("uptime counts from the container's start, not the host's boot", async () => {
    assert.ok(viewFiles.some((view) => view.target === "/proc/uptime"), "procview binds /proc/uptime");
    const uptime = Number((await execOk(container, ["cat", "/proc/uptime"])).split(" ")[0]);
    const hostUptime = Number((await readFile("/proc/uptime", "utf8")).split(" ")[0]);
    const sinceStart = (Date.now() - startedAt) / 1000;
    assert.ok(uptime >= 0 && uptime <= sinceStart + 1, `container uptime ${uptime} s, started ${sinceStart} s ago`);
    assert.ok(uptime < hostUptime, `container uptime ${uptime} s is below the host's ${hostUptime} s`);
  });

  await t.test("a container with another limit reading the same files sees its own", async () => {
    const other = await startIdleContainer((c) => c.withResourcesQuota({ memory: 100 / 1024 }).withBindMounts(binds));
    const firstLine = await execOk(other, ["head", "-n", "1", "/proc/meminfo"]);
    assert.match(firstLine, /^MemTotal:\s+102400 kB\n$/);
  });

  await t.test("the views cannot be written from inside the container", async () => {
    const result = await container.exec(["sh", "-c", "echo 1 > /proc/meminfo"]);
    assert.notEqual(result.exitCode, 0);
    assert.match(result.output, /Read-only file system/);
  });
});

/**
 * procview-runc as Docker's runtime, the way a Docker user gets procview: registered in
 * daemon.json's `runtimes`, chosen per container with `--runtime procview` (here through
 * testcontainers' HostConfig.Runtime), no binds written by hand.
 *
 * Real components only: Debian's dockerd 20.10 on a private socket (integration/docker.ts)
 * with its own containerd and Debian's runc, a busybox image built offline, procview's
 * FUSE server through its CLI. Docker 20.10 predates `docker run --annotation` (Docker 24),
 * so the settings file decides here; the annotations themselves are covered with ctr.
 * dockerd's environment reaches the runtime: the state dir, the settings file, and a PATH
 * whose first node is this Node.
 */

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { StartedTestContainer } from "testcontainers";
import { ContainerRegistry } from "../core/registry.ts";
import { debianPackage } from "../integration/debian-packages.ts";
import { execOk, IdleBusyboxContainer, useEngineForTestcontainers } from "../integration/docker-image.ts";
import { startDockerd, type Dockerd } from "../integration/docker.ts";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";

const runtime = fileURLToPath(new URL("../bin/procview-runc.js", import.meta.url));
/** testcontainers takes GiB: 50/1024 GiB is exactly 52428800 bytes. */
const fiftyMiB = 50 / 1024;

let dir: string;
let settingsFile: string;
let dockerd: Dockerd | undefined;
let fuse: ProcviewFuse | undefined;
const started: StartedTestContainer[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "procview-runc-docker-"));
  settingsFile = join(dir, "procview-runc.yaml");
  writeFileSync(settingsFile, "");
  fuse = await startProcviewFuse();
  // The real runc by path: the same Debian runc 1.1.5 as Docker's, whether or not one is on PATH.
  const runc = join(await debianPackage("runc", "bookworm"), "usr", "sbin", "runc");
  dockerd = await startDockerd({
    runtimes: { procview: { path: runtime } },
    env: {
      PROCVIEW_STATE_DIR: fuse.stateDir,
      PROCVIEW_RUNC_CONFIG: settingsFile,
      PROCVIEW_RUNC: runc,
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}`,
    },
  });
  await useEngineForTestcontainers(dockerd.dockerHost);
});

after(async () => {
  // Containers hold binds of FUSE files: stop them before the FUSE server.
  for (const container of started) await container.stop().catch(() => {});
  await dockerd?.stop();
  await fuse?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A busybox container under `docker run --runtime procview`. */
async function startContainer(configure: (container: IdleBusyboxContainer) => IdleBusyboxContainer): Promise<StartedTestContainer> {
  const container = await configure(new IdleBusyboxContainer().withRuntime("procview")).start();
  started.push(container);
  return container;
}

test("under --runtime procview a container sees its own memory limit and cpuset, read-only, and is forgotten when removed", async () => {
  const container = await startContainer((c) => c.withResourcesQuota({ memory: fiftyMiB }).withCpusetCpus("0"));
  const registry = new ContainerRegistry(fuse!.stateDir);
  assert.deepEqual(registry.ids(), [container.getId()]);

  assert.match(await execOk(container, ["head", "-n", "1", "/proc/meminfo"]), /^MemTotal:\s+51200 kB\n$/);
  assert.match(await execOk(container, ["grep", "^processor", "/proc/cpuinfo"]), /^processor\s*: 0\n$/);
  const write = await container.exec(["sh", "-c", "echo 1 > /proc/meminfo"]);
  assert.notEqual(write.exitCode, 0);
  assert.match(write.output, /Read-only file system/);

  await container.stop();
  assert.deepEqual(registry.ids(), [], "docker rm ran procview-runc delete");
});

test("the settings file decides for containers without annotations: opted-in leaves them the host's /proc", async () => {
  writeFileSync(settingsFile, "defaultPolicy: opted-in\n");
  try {
    const container = await startContainer((c) => c.withResourcesQuota({ memory: fiftyMiB }));
    const hostFirstLine = (await readFile("/proc/meminfo", "utf8")).split("\n")[0];
    assert.equal(await execOk(container, ["head", "-n", "1", "/proc/meminfo"]), hostFirstLine + "\n");
    assert.deepEqual(new ContainerRegistry(fuse!.stateDir).ids(), []);
  } finally {
    writeFileSync(settingsFile, "");
  }
});

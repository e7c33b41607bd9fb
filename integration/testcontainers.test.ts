/**
 * procview through the Docker engine and testcontainers, the way users of plain Docker
 * (no NRI) would use it: LXCFS-style read-only binds of procview's files over /proc.
 *
 * Real components only: Debian's dockerd on a private socket (integration/docker.ts),
 * a busybox image built offline, testcontainers' GenericContainer.
 * Needs root, /dev/fuse and Debian's docker.io.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { GenericContainer, PullPolicy, type StartedTestContainer } from "testcontainers";
import { buildBusyboxImage } from "./docker-image.ts";
import { startDockerd, type Dockerd } from "./docker.ts";

const image = "procview-test/busybox:latest";
/** testcontainers takes GiB: 50/1024 GiB is exactly 52428800 bytes. */
const fiftyMiB = 50 / 1024;

let dockerd: Dockerd | undefined;
const started: StartedTestContainer[] = [];

before(async () => {
  dockerd = await startDockerd();
  // testcontainers reads these when it first connects, which is after this point.
  process.env.DOCKER_HOST = dockerd.dockerHost;
  // Ryuk's image cannot be pulled here; the private engine is removed after the tests.
  process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
  // Else testcontainers starts an alpine container to find the gateway (this host has /.dockerenv).
  process.env.TESTCONTAINERS_HOST_OVERRIDE = "localhost";
  await buildBusyboxImage(image);
});

after(async () => {
  for (const container of started) await container.stop().catch(() => {});
  await dockerd?.stop();
});

/** A busybox container that idles, with no network: the private engine has no bridge. */
async function startIdleContainer(configure: (container: GenericContainer) => GenericContainer): Promise<StartedTestContainer> {
  const container = await configure(
    new GenericContainer(image)
      .withPullPolicy(PullPolicy.neverPull())
      .withNetworkMode("none")
      .withCommand(["sleep", "3600"]),
  ).start();
  started.push(container);
  return container;
}

async function run(container: StartedTestContainer, command: string[]): Promise<string> {
  const result = await container.exec(command);
  assert.equal(result.exitCode, 0, `${command.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

test("without procview, a container limited to 50 MiB still sees the host's MemTotal", async () => {
  const container = await startIdleContainer((c) => c.withResourcesQuota({ memory: fiftyMiB }));

  const limit = await run(container, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
  assert.equal(limit.trim(), "52428800");
  const hostFirstLine = (await readFile("/proc/meminfo", "utf8")).split("\n")[0];
  const containerFirstLine = await run(container, ["head", "-n", "1", "/proc/meminfo"]);
  assert.equal(containerFirstLine, hostFirstLine + "\n");
});

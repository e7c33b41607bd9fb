/**
 * A busybox image for a Docker engine that reaches no registry: built `FROM scratch`
 * around the static busybox of Debian's busybox-static, which installs its own applet
 * links at build time.
 */

import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GenericContainer, PullPolicy, type StartedTestContainer } from "testcontainers";
import { debianPackage } from "./debian-packages.ts";

export const busyboxDockerfile = [
  "FROM scratch",
  "COPY busybox /bin/busybox",
  'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
  'CMD ["/bin/sh"]',
  "",
].join("\n");

/** Fills `dir` with a Dockerfile and the busybox binary it copies: a complete build context. */
export async function writeBusyboxBuildContext(dir: string): Promise<void> {
  const busybox = join(await debianPackage("busybox-static", "bookworm"), "bin", "busybox");
  await copyFile(busybox, join(dir, "busybox"));
  await writeFile(join(dir, "Dockerfile"), busyboxDockerfile);
}

/** Builds `tag` on the engine testcontainers is pointed at (DOCKER_HOST) and returns it. */
export async function buildBusyboxImage(tag: string): Promise<string> {
  const context = await mkdtemp(join(tmpdir(), "procview-busybox-image-"));
  try {
    await writeBusyboxBuildContext(context);
    // The engine is private and removed after the tests; testcontainers' own clean-up (Ryuk) is off.
    await GenericContainer.fromDockerfile(context).build(tag, { deleteOnExit: false });
    return tag;
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/** The tag tests build the busybox image under. */
export const busyboxImageTag = "procview-test/busybox:latest";

/** A busybox container that idles, with no network (the private engines have no bridge), never pulled. */
export class IdleBusyboxContainer extends GenericContainer {
  constructor(image: string = busyboxImageTag) {
    super(image);
    this.withPullPolicy(PullPolicy.neverPull()).withNetworkMode("none").withCommand(["sleep", "3600"]);
  }

  /** What `docker run --cpuset-cpus` sets; GenericContainer has no setter for it. */
  withCpusetCpus(cpus: string): this {
    this.hostConfig.CpusetCpus = cpus;
    return this;
  }

  /** What `docker run --runtime NAME` sets: one of the engine's configured runtimes. */
  withRuntime(name: string): this {
    this.hostConfig.Runtime = name;
    return this;
  }
}

/** The output of `command` in the container; throws with its stderr when it exits non-zero. */
export async function execOk(container: StartedTestContainer, command: string[]): Promise<string> {
  const result = await container.exec(command);
  if (result.exitCode !== 0) throw new Error(`${command.join(" ")} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

/**
 * Points testcontainers at a private engine (it reads the environment when it first
 * connects) and builds the busybox image there.
 */
export async function useEngineForTestcontainers(dockerHost: string): Promise<void> {
  process.env.DOCKER_HOST = dockerHost;
  // Ryuk's image cannot be pulled here; the private engine is removed after the tests.
  process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
  // Else testcontainers starts an alpine container to find the gateway (this host has /.dockerenv).
  process.env.TESTCONTAINERS_HOST_OVERRIDE = "localhost";
  await buildBusyboxImage(busyboxImageTag);
}

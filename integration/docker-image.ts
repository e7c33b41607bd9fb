/**
 * A busybox image for a Docker engine that reaches no registry: built `FROM scratch`
 * around the static busybox of Debian's busybox-static, which installs its own applet
 * links at build time.
 */

import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GenericContainer } from "testcontainers";
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

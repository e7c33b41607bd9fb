/**
 * A busybox image for a Docker engine that reaches no registry: built `FROM scratch`
 * around one static busybox binary (Debian's busybox-static), which installs its own
 * applet links at build time.
 */

import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GenericContainer } from "testcontainers";

export const busyboxDockerfile = [
  "FROM scratch",
  "COPY busybox /bin/busybox",
  'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
  'CMD ["/bin/sh"]',
  "",
].join("\n");

/**
 * Builds `tag` on the engine testcontainers is pointed at (DOCKER_HOST) and returns it.
 * `busyboxBinary` must be statically linked: the image holds nothing else.
 */
export async function buildBusyboxImage(tag: string, busyboxBinary: string): Promise<string> {
  const context = await mkdtemp(join(tmpdir(), "procview-busybox-image-"));
  try {
    await copyFile(busyboxBinary, join(context, "busybox"));
    await writeFile(join(context, "Dockerfile"), busyboxDockerfile);
    // The engine is private and removed after the tests; testcontainers' own clean-up (Ryuk) is off.
    await GenericContainer.fromDockerfile(context).build(tag, { deleteOnExit: false });
    return tag;
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

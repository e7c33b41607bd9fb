/**
 * Container images for the integration tests, built from Debian's static busybox with no
 * docker and no registry: an OCI image-layout tar that `ctr images import` accepts.
 * Two images share one layer: busybox (a shell) and a pause image for the pod sandbox.
 */

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { debianPackage } from "./debian-packages.ts";
import { tarArchive, type TarEntry } from "./tar-writer.ts";

export const busyboxImageName = "localhost/procview/busybox:test";
export const pauseImageName = "localhost/procview/pause:test";

export interface OciPlatform {
  architecture: string;
  os: "linux";
}

export interface OciImageSpec {
  /** Full reference, stored as the `io.containerd.image.name` annotation. */
  name: string;
  cmd: string[];
}

export interface TestImages {
  /** The OCI image-layout tar holding both images. */
  tarPath: string;
  busybox: string;
  pause: string;
}

const execFileAsync = promisify(execFile);
const mediaTypes = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

/**
 * The image layer: bin/busybox, one symlink per applet in bin/, and the empty directories
 * runc mounts over (proc, sys, dev) or that programs expect (etc, tmp).
 */
export function busyboxRootfs(busybox: Uint8Array, applets: readonly string[]): Buffer {
  const entries: TarEntry[] = [
    { type: "directory", path: "bin" },
    { type: "file", path: "bin/busybox", content: busybox, mode: 0o755 },
  ];
  for (const applet of [...new Set(applets)].sort()) {
    if (applet === "" || applet.includes("/") || applet === "." || applet === "..") {
      throw new Error(`invalid busybox applet name: ${JSON.stringify(applet)}`);
    }
    if (applet !== "busybox") entries.push({ type: "symlink", path: `bin/${applet}`, target: "busybox" });
  }
  for (const dir of ["dev", "etc", "proc", "sys"]) entries.push({ type: "directory", path: dir });
  entries.push({ type: "directory", path: "tmp", mode: 0o1777 });
  return tarArchive(entries);
}

/**
 * An OCI image layout (oci-layout, index.json, blobs/sha256/…) as a tar: one manifest
 * and config per image, all on the same single uncompressed layer.
 */
export function ociImageLayout(layer: Uint8Array, images: readonly OciImageSpec[], platform: OciPlatform): Buffer {
  const blobs = new Map<string, Uint8Array>();
  const addBlob = (content: Uint8Array, mediaType: string) => {
    const digest = sha256Digest(content);
    blobs.set(digest, content);
    return { mediaType, digest, size: content.length };
  };
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));

  const layerDescriptor = addBlob(layer, mediaTypes.layer);
  const manifests = images.map((image) => {
    const config = addBlob(
      json({
        ...platform,
        config: { Env: ["PATH=/bin"], Cmd: image.cmd },
        // Uncompressed layer: its diff_id is its own digest.
        rootfs: { type: "layers", diff_ids: [layerDescriptor.digest] },
      }),
      mediaTypes.config,
    );
    const manifest = addBlob(
      json({ schemaVersion: 2, mediaType: mediaTypes.manifest, config, layers: [layerDescriptor] }),
      mediaTypes.manifest,
    );
    return {
      ...manifest,
      platform,
      annotations: {
        "io.containerd.image.name": image.name,
        "org.opencontainers.image.ref.name": image.name.slice(image.name.lastIndexOf(":") + 1),
      },
    };
  });

  const entries: TarEntry[] = [
    { type: "file", path: "oci-layout", content: json({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", path: "index.json", content: json({ schemaVersion: 2, mediaType: mediaTypes.index, manifests }) },
    { type: "directory", path: "blobs" },
    { type: "directory", path: "blobs/sha256" },
  ];
  for (const [digest, content] of blobs) {
    entries.push({ type: "file", path: `blobs/sha256/${digest.slice("sha256:".length)}`, content });
  }
  return tarArchive(entries);
}

export function sha256Digest(content: Uint8Array): string {
  return `sha256:${createHash("sha256").update(content).digest("hex")}`;
}

/** The OCI architecture name of the machine we run on (images must match the host). */
export function hostPlatform(): OciPlatform {
  const architectures: Partial<Record<NodeJS.Architecture, string>> = {
    x64: "amd64",
    arm64: "arm64",
    arm: "arm",
    ppc64: "ppc64le",
    s390x: "s390x",
    riscv64: "riscv64",
  };
  const architecture = architectures[process.arch];
  if (architecture === undefined) throw new Error(`no OCI architecture name for ${process.arch}`);
  return { architecture, os: "linux" };
}

/** Writes `<dir>/procview-test-images.tar` with the busybox and pause images. */
export async function buildTestImages(dir: string): Promise<TestImages> {
  const busyboxPath = join(await debianPackage("busybox-static", "bookworm"), "bin", "busybox");
  // The binary is static: it runs on the host to tell which applets it has.
  const { stdout } = await execFileAsync(busyboxPath, ["--list"]);
  const applets = stdout.split("\n").filter((line) => line !== "");
  const layer = busyboxRootfs(await readFile(busyboxPath), applets);
  const tarPath = join(dir, "procview-test-images.tar");
  const images: OciImageSpec[] = [
    { name: busyboxImageName, cmd: ["sh"] },
    { name: pauseImageName, cmd: ["busybox", "sleep", "2147483647"] },
  ];
  await writeFile(tarPath, ociImageLayout(layer, images, hostPlatform()));
  return { tarPath, busybox: busyboxImageName, pause: pauseImageName };
}

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  buildTestImages,
  busyboxImageName,
  busyboxRootfs,
  ociImageLayout,
  pauseImageName,
  sha256Digest,
} from "./oci-image.ts";

const execFileAsync = promisify(execFile);

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

async function extract(tar: Uint8Array, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tarPath = `${dir}.tar`;
  await writeFile(tarPath, tar);
  await execFileAsync("tar", ["-xf", tarPath, "-C", dir]);
}

/** Checks a descriptor against its blob with sha256sum, not with the code under test. */
async function readBlob(layoutDir: string, descriptor: Descriptor): Promise<Buffer> {
  const path = join(layoutDir, "blobs", "sha256", descriptor.digest.replace(/^sha256:/, ""));
  const { stdout } = await execFileAsync("sha256sum", [path]);
  assert.equal(`sha256:${stdout.split(" ")[0]}`, descriptor.digest);
  const blob = await readFile(path);
  assert.equal(blob.length, descriptor.size);
  return blob;
}

test("an OCI layout whose index, manifests, configs and shared layer agree by digest", async () => {
  const dir = await mkdtemp(join(tmpdir(), "procview-oci-test-"));
  try {
    const layer = busyboxRootfs(Buffer.from("not really busybox"), ["sh", "sleep", "busybox", "[["]);
    const layout = ociImageLayout(
      layer,
      [
        { name: "localhost/a/one:test", cmd: ["sh"] },
        { name: "localhost/a/two:v2", cmd: ["busybox", "sleep", "9"] },
      ],
      { architecture: "amd64", os: "linux" },
    );
    await extract(layout, join(dir, "layout"));
    const layoutDir = join(dir, "layout");
    assert.deepEqual(JSON.parse(await readFile(join(layoutDir, "oci-layout"), "utf8")), { imageLayoutVersion: "1.0.0" });
    const index = JSON.parse(await readFile(join(layoutDir, "index.json"), "utf8")) as { manifests: Descriptor[] };
    assert.deepEqual(
      index.manifests.map((m) => [m.annotations?.["io.containerd.image.name"], m.annotations?.["org.opencontainers.image.ref.name"]]),
      [["localhost/a/one:test", "test"], ["localhost/a/two:v2", "v2"]],
    );

    const cmds: string[][] = [];
    const layerDigests: string[] = [];
    for (const descriptor of index.manifests) {
      assert.equal(descriptor.mediaType, "application/vnd.oci.image.manifest.v1+json");
      assert.deepEqual(descriptor.platform, { architecture: "amd64", os: "linux" });
      const manifest = JSON.parse((await readBlob(layoutDir, descriptor)).toString()) as { config: Descriptor; layers: Descriptor[] };
      const config = JSON.parse((await readBlob(layoutDir, manifest.config)).toString()) as {
        architecture: string;
        os: string;
        config: { Env: string[]; Cmd: string[] };
        rootfs: { type: string; diff_ids: string[] };
      };
      assert.equal(manifest.layers.length, 1);
      assert.equal(manifest.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar");
      assert.deepEqual(await readBlob(layoutDir, manifest.layers[0]), layer);
      assert.deepEqual(config.rootfs, { type: "layers", diff_ids: [manifest.layers[0].digest] });
      assert.equal(config.architecture, "amd64");
      assert.deepEqual(config.config.Env, ["PATH=/bin"]);
      cmds.push(config.config.Cmd);
      layerDigests.push(manifest.layers[0].digest);
    }
    assert.deepEqual(cmds, [["sh"], ["busybox", "sleep", "9"]]);
    assert.deepEqual(layerDigests, [sha256Digest(layer), sha256Digest(layer)], "both images share the one layer");

    await extract(layer, join(dir, "rootfs"));
    const rootfs = join(dir, "rootfs");
    assert.equal(await readFile(join(rootfs, "bin/busybox"), "utf8"), "not really busybox");
    assert.equal((await stat(join(rootfs, "bin/busybox"))).mode & 0o777, 0o755);
    assert.equal(await readlink(join(rootfs, "bin/sh")), "busybox");
    assert.equal(await readlink(join(rootfs, "bin/[[")), "busybox");
    for (const empty of ["dev", "etc", "proc", "sys", "tmp"]) assert.ok((await stat(join(rootfs, empty))).isDirectory());
    assert.equal((await stat(join(rootfs, "tmp"))).mode & 0o7777, 0o1777);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("applet names that would escape bin/ are refused", () => {
  assert.throws(() => busyboxRootfs(new Uint8Array(1), ["../etc/passwd"]), /invalid busybox applet name/);
});

test("buildTestImages packs Debian's static busybox with its applets", async () => {
  const dir = await mkdtemp(join(tmpdir(), "procview-oci-test-"));
  try {
    const images = await buildTestImages(dir);
    assert.deepEqual([images.busybox, images.pause], [busyboxImageName, pauseImageName]);
    const { stdout } = await execFileAsync("tar", ["-tf", images.tarPath]);
    const blobs = stdout.split("\n").filter((line) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(line));
    assert.equal(blobs.length, 5, "one shared layer + two configs + two manifests");
    await extract(await readFile(images.tarPath), join(dir, "layout"));
    const index = JSON.parse(await readFile(join(dir, "layout", "index.json"), "utf8")) as { manifests: Descriptor[] };
    const manifest = JSON.parse((await readBlob(join(dir, "layout"), index.manifests[0])).toString()) as { layers: Descriptor[] };
    const { stdout: listing } = await execFileAsync("tar", ["-tvf", join(dir, "layout", "blobs", "sha256", manifest.layers[0].digest.slice(7))]);
    assert.match(listing, /^-rwxr-xr-x root\/root +\d{6,} .* bin\/busybox$/m);
    assert.match(listing, / bin\/sh -> busybox$/m);
    assert.match(listing, / bin\/sleep -> busybox$/m);
    assert.match(listing, / bin\/head -> busybox$/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

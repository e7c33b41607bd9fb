/**
 * procview-runc as the CRI's runc (`BinaryName`), without the NRI plugin: a private
 * containerd 1.7 whose runc runtime runs procview-runc and passes procview's container
 * annotations on (`container_annotations`), pods made through the CRI as kubelet makes
 * them, `procview fuse` through its CLI.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ContainerRegistry } from "../core/registry.ts";
import { startContainerd, type Containerd } from "../integration/containerd.ts";
import { connectCri, type CriClient } from "../integration/cri.ts";
import { debianPackage } from "../integration/debian-packages.ts";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";

const runtime = fileURLToPath(new URL("../bin/procview-runc.js", import.meta.url));

let dir: string;
let containerd: Containerd | undefined;
let cri: CriClient | undefined;
let fuse: ProcviewFuse | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "procview-runc-cri-"));
  const shared = join(dir, "shared");
  await mkdir(shared);
  const runcPackage = await debianPackage("runc", "bookworm");
  containerd = await startContainerd({
    // The FUSE mount is made below `shared` after containerd's namespace exists (see integration/containerd.ts).
    sharedDirs: [shared],
    runcBinary: runtime,
    containerAnnotations: ["procview.noderesource.dev", "*.procview.noderesource.dev"],
    env: { PROCVIEW_STATE_DIR: join(shared, "state"), PROCVIEW_RUNC: join(runcPackage, "usr", "sbin", "runc"), PATH: dirname(process.execPath) },
  });
  cri = connectCri(containerd.criAddress);
  fuse = await startProcviewFuse({ dir: join(dir, "shared") });
});

after(async () => {
  await cri?.teardown().catch(() => {});
  cri?.close();
  await fuse?.stop();
  await containerd?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function runApp(name: string, annotations: Record<string, string>): Promise<{ podId: string; id: string; firstLine: string }> {
  const podId = await cri!.runPod({ name, uid: `uid-${name}`, namespace: "procview-runc-cri", cgroupParent: containerd!.cgroupParent });
  const id = await cri!.createContainer(podId, { name: "app", image: containerd!.images.busybox, command: ["sleep", "3600"], memoryLimitBytes: 52428800, annotations });
  await cri!.startContainer(id);
  const result = await cri!.execSync(id, ["head", "-n", "1", "/proc/meminfo"], 10);
  assert.equal(result.exitCode, 0, result.stderr);
  return { podId, id, firstLine: result.stdout };
}

test("a CRI container gets its views from the runtime; the pod's pause container is left alone; removal forgets it", async () => {
  const registry = new ContainerRegistry(fuse!.stateDir);
  const { podId, id, firstLine } = await runApp("plain", {});
  assert.match(firstLine, /^MemTotal:\s+51200 kB\n$/);
  assert.deepEqual(registry.ids(), [id], "recorded: the app container, not the sandbox");
  await cri!.stopPod(podId);
  await cri!.removePod(podId);
  assert.deepEqual(registry.ids(), []);
});

test("a container annotation the CRI passes on (container_annotations) opts the container out", async () => {
  const { firstLine } = await runApp("opted-out", { "procview.noderesource.dev": "disabled" });
  assert.equal(firstLine, readFileSync("/proc/meminfo", "utf8").split("\n")[0] + "\n");
});

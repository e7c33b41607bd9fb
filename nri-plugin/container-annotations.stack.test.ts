/**
 * The NRI plugin reads a container's own annotations (CRI ContainerConfig.annotations, as
 * kubelet or crictl set them), and they win over the pod's: on the real stack, containerd
 * 1.7 through the CRI with `procview fuse` and `procview nri` started through the CLI.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { startProcviewStack, type ProcviewStack } from "../integration/procview-stack.ts";

let stack: ProcviewStack | undefined;

before(async () => {
  stack = await startProcviewStack();
});

after(async () => {
  await stack?.stop();
});

async function firstMeminfoLine(podAnnotations: Record<string, string>, containerAnnotations: Record<string, string>, name: string): Promise<string> {
  const { cri, containerd } = stack!;
  const podId = await cri.runPod({ name, uid: `uid-${name}`, namespace: "procview-annotations", cgroupParent: containerd.cgroupParent, annotations: podAnnotations });
  const id = await cri.createContainer(podId, {
    name: "app",
    image: containerd.images.busybox,
    command: ["sleep", "3600"],
    memoryLimitBytes: 52428800,
    annotations: containerAnnotations,
  });
  await cri.startContainer(id);
  const result = await cri.execSync(id, ["head", "-n", "1", "/proc/meminfo"], 10);
  assert.equal(result.exitCode, 0, result.stderr);
  return result.stdout;
}

const hostFirstLine = () => readFileSync("/proc/meminfo", "utf8").split("\n")[0] + "\n";

test("a container's own annotation disables procview in a pod that enables it", async () => {
  const line = await firstMeminfoLine({ "procview.noderesource.dev/pod": "enabled" }, { "procview.noderesource.dev": "disabled" }, "own-disabled");
  assert.equal(line, hostFirstLine());
});

test("a container's own annotation enables procview in a pod that disables it", async () => {
  const line = await firstMeminfoLine({ "procview.noderesource.dev": "disabled" }, { "procview.noderesource.dev": "enabled" }, "own-enabled");
  assert.match(line, /^MemTotal:\s+51200 kB\n$/);
});

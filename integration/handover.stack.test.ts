/**
 * A planned restart on the real stack: a running pod reads /proc/meminfo every 0.1 s
 * while `procview fuse --replace` takes the FUSE server's connection over. Private
 * containerd 1.7 with NRI, procview's FUSE server and plugin through the CLI, pods
 * through the CRI as kubelet makes them. Needs root and /dev/fuse.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { readFuseStatus } from "../core/fuse-status.ts";
import { startProcviewStack, type ProcviewStack } from "./procview-stack.ts";

const fiftyMiB = 52428800;
const limitLine = "MemTotal:          51200 kB";

let stack: ProcviewStack | undefined;

before(async () => {
  stack = await startProcviewStack();
});

after(async () => {
  await stack?.stop();
});

async function runBusybox(name: string, command: string[]): Promise<string> {
  const { cri, containerd } = stack!;
  try {
    const pod = await cri.runPod({ name, uid: `uid-${name}`, namespace: "procview-test", cgroupParent: containerd.cgroupParent });
    const id = await cri.createContainer(pod, { name: "busybox", image: containerd.images.busybox, command, memoryLimitBytes: fiftyMiB });
    await cri.startContainer(id);
    return id;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- containerd log (tail) ---\n${containerd.logTail(30)}`, { cause: err });
  }
}

async function exec(id: string, command: string[]): Promise<string> {
  const result = await stack!.cri.execSync(id, command, 10);
  assert.equal(result.exitCode, 0, `${command.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

/** Every read's first line, or FAIL and the error, one per line in /tmp/reads. */
const readEvery100ms = [
  "sh",
  "-c",
  'while true; do if head -n 1 /proc/meminfo >/tmp/line 2>/tmp/err; then cat /tmp/line >>/tmp/reads; else echo "FAIL $(cat /tmp/err)" >>/tmp/reads; fi; sleep 0.1; done',
];

async function readsSoFar(id: string): Promise<string[]> {
  return (await exec(id, ["cat", "/tmp/reads"])).split("\n").filter((line) => line !== "");
}

test("a pod reading /proc/meminfo every 0.1 s through fuse --replace: no failed read, the old server gone, the new one serving", { timeout: 300_000 }, async () => {
  const id = await runBusybox("handover-reader", readEvery100ms);
  const deadline = Date.now() + 30_000;
  while ((await readsSoFar(id).catch(() => [])).length < 10) {
    assert.ok(Date.now() < deadline, "the pod's reader never got going");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  const readsBefore = (await readsSoFar(id)).length;
  const old = await stack!.replaceFuse();
  const successor = stack!.fuse!;
  const exitDeadline = Date.now() + 30_000;
  while (old!.running()) {
    assert.ok(Date.now() < exitDeadline, "the replaced server did not exit");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await new Promise((resolve) => setTimeout(resolve, 3000));

  const reads = await readsSoFar(id);
  assert.deepEqual(reads.filter((line) => line !== limitLine), [], "every read showed the container's limit, none failed");
  assert.ok(reads.length >= readsBefore + 20, `the pod read on after the handover (${readsBefore} reads before, ${reads.length} in all)`);
  process.stdout.write(`# ${reads.length} reads by the pod, ${readsBefore} before the handover, 0 failed\n`);

  assert.equal(readFuseStatus(successor.stateDir)?.pid, successor.pid, "the status file names the new server");
  assert.ok(successor.records().some((record) => record.msg === "took the FUSE connection over" && record.predecessor === old!.pid));
  // The plugin judges the new server live: a container created now gets its views too.
  const later = await runBusybox("after-handover", ["sleep", "3600"]);
  assert.equal(await exec(later, ["head", "-n", "1", "/proc/meminfo"]), `${limitLine}\n`);
});

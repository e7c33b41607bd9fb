/**
 * A planned restart on the real stack: a running pod reads /proc/meminfo every 0.1 s
 * while `procview fuse --replace` takes the FUSE server's connection over. Private
 * containerd 1.7 with NRI, procview's FUSE server and plugin through the CLI, pods
 * through the CRI as kubelet makes them. Needs root and /dev/fuse.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import { readFuseStatus } from "../core/fuse-status.ts";
import { startProcviewRun, type ProcviewProcess } from "./procview-process.ts";
import { startProcviewStack, type ProcviewStack } from "./procview-stack.ts";

const fiftyMiB = 52428800;
const limitLine = "MemTotal:          51200 kB";

let stack: ProcviewStack | undefined;
/** The pod reading every 0.1 s since the first test. */
let readerPod: string | undefined;

before(async () => {
  stack = await startProcviewStack();
});

after(async () => {
  await stack?.stop();
});

function runBusybox(name: string, command: string[]): Promise<string> {
  return stack!.runBusybox(name, { command, resources: { memoryLimitBytes: fiftyMiB } });
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
  readerPod = id;
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

test("procview run --replace, twice: the FUSE half is taken over, the plugin restarts, the pod never fails a read", { timeout: 300_000 }, async () => {
  assert.ok(readerPod, "the first test's pod reads");
  const { containerd } = stack!;
  const shared = join(stack!.fuse!.mountpoint, "..");
  const options = { socket: containerd.nriSocket, mountpoint: stack!.fuse!.mountpoint, stateDir: stack!.fuse!.stateDir };
  // One plugin per runtime: `run` brings its own.
  await stack!.plugin!.stop();
  const runs: ProcviewProcess[] = [];
  try {
    const readsBefore = (await readsSoFar(readerPod)).length;
    runs.push(await startProcviewRun({ ...options, replace: true, logFile: join(shared, "run-1.log") }));
    assert.ok(runs[0].records().some((record) => record.msg === "took the FUSE connection over" && record.predecessor === stack!.fuse!.pid));
    runs.push(await startProcviewRun({ ...options, replace: true, logFile: join(shared, "run-2.log") }));
    assert.ok(runs[1].records().some((record) => record.msg === "took the FUSE connection over" && record.predecessor === runs[0].pid));
    assert.equal(runs[0].running(), false, "the replaced run process exited before the new plugin registered");
    assert.ok(runs[0].records().some((record) => record.msg === "replaced; exiting"));
    assert.equal(readFuseStatus(options.stateDir)?.pid, runs[1].pid);

    const later = await runBusybox("after-run-replace", ["sleep", "3600"]);
    assert.equal(await exec(later, ["head", "-n", "1", "/proc/meminfo"]), `${limitLine}\n`, "the new plugin binds the new server's views");
    // Two handovers can take under a second: wait (bounded) for the pod to read on after them.
    const readDeadline = Date.now() + 30_000;
    let reads = await readsSoFar(readerPod);
    while (reads.length <= readsBefore + 10) {
      assert.ok(Date.now() < readDeadline, `the pod read on after the handovers (${readsBefore} reads before, ${reads.length} in all)`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      reads = await readsSoFar(readerPod);
    }
    assert.deepEqual(reads.filter((line) => line !== limitLine), [], "no read of the pod failed");
  } finally {
    for (const run of runs.reverse()) await run.stop();
  }
});

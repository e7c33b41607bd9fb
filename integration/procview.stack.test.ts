/**
 * The walking skeleton on the real stack: a private containerd 1.7 with NRI, procview's
 * FUSE server and NRI plugin started through the CLI, pods made through the CRI the way
 * kubelet makes them. Needs root and /dev/fuse; the harness fetches containerd and runc.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { viewFiles } from "../core/views.ts";
import type { ContainerResources } from "./cri.ts";
import { startProcviewStack, type ProcviewStack } from "./procview-stack.ts";

const fiftyMiB = 52428800;

let stack: ProcviewStack | undefined;

before(async () => {
  stack = await startProcviewStack();
});

after(async () => {
  await stack?.stop();
});

/** A running busybox container in a pod of its own. */
function runBusybox(name: string, resources: ContainerResources = { memoryLimitBytes: fiftyMiB }): Promise<string> {
  return stack!.runBusybox(name, { resources });
}

async function exec(id: string, command: string[]): Promise<string> {
  const result = await stack!.cri.execSync(id, command, 10);
  assert.equal(result.exitCode, 0, `${command.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

async function hostMemTotalLine(): Promise<string> {
  return (await readFile("/proc/meminfo", "utf8")).split("\n")[0] + "\n";
}

test("a busybox limited to 50 MiB reads MemTotal 51200 kB, padded like the kernel", async () => {
  const id = await runBusybox("headline");
  assert.equal(await exec(id, ["head", "-n", "1", "/proc/meminfo"]), "MemTotal:          51200 kB\n");
});

test("with cpuset 0 it sees one processor, cpu/online 0, a fresh uptime, and every view reads", async () => {
  const id = await runBusybox("cpuset", { memoryLimitBytes: fiftyMiB, cpusetCpus: "0" });
  assert.equal(await exec(id, ["head", "-n", "1", "/proc/meminfo"]), "MemTotal:          51200 kB\n");
  assert.equal(await exec(id, ["grep", "-c", "^processor", "/proc/cpuinfo"]), "1\n");
  assert.equal(await exec(id, ["cat", "/sys/devices/system/cpu/online"]), "0\n");
  const uptime = Number((await exec(id, ["cat", "/proc/uptime"])).split(" ")[0]);
  assert.ok(uptime >= 0 && uptime < 60, `uptime ${uptime} s`);
  const mounted = (await exec(id, ["cat", "/proc/self/mountinfo"])).split("\n").map((line) => line.split(" ")[4]);
  for (const view of viewFiles) {
    assert.ok(mounted.includes(view.target), `${view.target} is bound`);
    // busybox cat reads with sendfile(2), which goes through the page cache up to st_size.
    const content = await exec(id, ["cat", view.target]);
    // diskstats too: the host's devices, at 0 for a container that did no block I/O.
    assert.ok(content.length > 0 && content.endsWith("\n"), `${view.target} reads whole: ${JSON.stringify(content)}`);
  }
});

test("the view is a read-only bind: writing it fails inside the container", async () => {
  const id = await runBusybox("readonly");
  const mountLine = (await exec(id, ["cat", "/proc/self/mountinfo"])).split("\n").find((line) => line.split(" ")[4] === "/proc/meminfo");
  assert.ok(mountLine, "a mount sits on /proc/meminfo");
  assert.match(mountLine.split(" ")[5], /(^|,)ro(,|$)/);
  const write = await stack!.cri.execSync(id, ["sh", "-c", "echo 1 > /proc/meminfo"], 10);
  assert.notEqual(write.exitCode, 0);
  assert.match(write.stderr, /Read-only file system/);
});

test("with the FUSE server down, the plugin adds no binds and the container still starts", async () => {
  await stack!.fuse!.stop();
  try {
    const id = await runBusybox("fuse-down");
    assert.equal(await exec(id, ["head", "-n", "1", "/proc/meminfo"]), await hostMemTotalLine());
    assert.ok(
      stack!.plugin!.records().some((record) => record.msg === "FUSE server not serving; container starts without procview views" && record.container === "busybox"),
      "the plugin logs why the container got no views",
    );
  } finally {
    await stack!.startFuse();
  }
});

test("with the plugin not connected, a container still starts and shows the host's MemTotal", async () => {
  await stack!.plugin!.stop();
  const id = await runBusybox("no-plugin");
  assert.equal(await exec(id, ["head", "-n", "1", "/proc/meminfo"]), await hostMemTotalLine());
  await stack!.startPlugin();
});

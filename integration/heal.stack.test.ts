/**
 * Crash recovery on the real stack (private containerd 1.7 + NRI + runc, procview's FUSE
 * server and plugin through the CLI): SIGKILL of the FUSE server, then a plain start.
 * A running pod that reads /proc/meminfo every 0.1 s reads its own MemTotal again within
 * 15 s, without a restart, and none of its reads ever shows the host's MemTotal; a
 * container that stopped meanwhile is logged with its id as one that cannot be healed.
 * The pid counter is made to wrap under the pod first: healing must enter its namespace
 * through its init, not through a child that exits before it gets there.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { viewFiles } from "../core/views.ts";
import { waitUntil } from "./waiting.ts";
import { isRunning } from "./leftovers.ts";
import { startProcviewStack, type ProcviewStack } from "./procview-stack.ts";

const fiftyMiB = 52428800;
const limitLine = "MemTotal:          51200 kB";
const healWithinMs = 15_000;
const nsLastPid = "/proc/sys/kernel/ns_last_pid";

let stack: ProcviewStack | undefined;

before(async () => {
  stack = await startProcviewStack();
});

after(async () => {
  await stack?.stop();
});

function runPodWith(name: string, command: string[]): Promise<string> {
  return stack!.runBusybox(name, { namespace: "procview-heal", command, resources: { memoryLimitBytes: fiftyMiB } });
}

async function exec(id: string, command: string[]): Promise<{ stdout: string; exitCode: number; stderr: string }> {
  return await stack!.cri.execSync(id, command, 10);
}


test("SIGKILL of the FUSE server, then a plain start: the same running pod reads its own MemTotal again within 15 s, never the host's", async () => {
  const hostMemTotal = readFileSync("/proc/meminfo", "utf8").split("\n")[0];
  // What a node that has run for a while has: the pid counter wrapped since the pods started,
  // so their short-lived children have lower pids (and come first in /proc, by number or as text).
  const pidMax = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
  writeFileSync(nsLastPid, String(pidMax - 3000));
  // Every read is appended to a file in the container: what it saw, or FAILED.
  const reader = await runPodWith("heal-reader", ["sh", "-c", "while :; do head -n 1 /proc/meminfo >> /tmp/reads 2>&1 || echo FAILED >> /tmp/reads; usleep 100000; done"]);
  const leaver = await runPodWith("heal-leaver", ["sleep", "3600"]);
  writeFileSync(nsLastPid, "1000");
  const reads = async (): Promise<string[]> => (await exec(reader, ["cat", "/tmp/reads"])).stdout.split("\n").filter((line) => line !== "");
  await waitUntil("first reads", 10_000, async () => (await reads()).length >= 3);
  assert.equal((await reads())[0], limitLine);

  const oldServer = stack!.fuse!;
  process.kill(oldServer.pid, "SIGKILL");
  await waitUntil("the killed server to exit", 10_000, async () => !isRunning(oldServer.pid));
  const readsBeforeGap = (await reads()).length;
  const broken = await exec(reader, ["head", "-n", "1", "/proc/meminfo"]);
  assert.notEqual(broken.exitCode, 0, `a read after the kill: ${broken.stdout}`);
  // This one exits meanwhile: it cannot be healed.
  await stack!.cri.stopContainer(leaver, 5);
  await waitUntil("reads failing in the gap", 10_000, async () => (await reads()).slice(readsBeforeGap).length >= 10);

  const restarted = Date.now();
  const newServer = await stack!.startFuse();
  let lastRead: Awaited<ReturnType<typeof exec>> | undefined;
  const healedIn = await waitUntil("the pod's own MemTotal", healWithinMs, async () => {
    lastRead = await exec(reader, ["head", "-n", "1", "/proc/meminfo"]);
    return lastRead.stdout === `${limitLine}\n`;
  }).catch((err: Error) => {
    throw new Error(`${err.message}; the last read: ${JSON.stringify(lastRead)}\n--- new server's log ---\n${readFileSync(newServer.logFile, "utf8").slice(-6000)}`);
  });
  const all = await reads();
  const gap = all.slice(readsBeforeGap);
  assert.ok(gap.includes("FAILED"), "reads in the gap failed");
  for (const line of all) {
    assert.ok(line === limitLine || !line.startsWith("MemTotal"), `a read showed ${JSON.stringify(line)} (host: ${hostMemTotal})`);
  }
  // Healing happens within a second or two; the poll above may land on it a little later.
  console.log(`healed within ${Date.now() - restarted} ms of the restart (${healedIn} ms after the new server served), ${gap.length} reads since the kill`);

  // Every view reads again, and the reader's own loop reads its MemTotal once more.
  for (const view of viewFiles) {
    const result = await exec(reader, ["cat", view.target]);
    assert.equal(result.exitCode, 0, `${view.target}: ${result.stderr}`);
  }
  const count = all.length;
  await waitUntil("the reader's loop to read its limit again", 5_000, async () => (await reads()).slice(count).includes(limitLine));

  await waitUntil("the heal to finish", healWithinMs, async () => newServer.records().some((r) => r.msg === "healing done"));
  const records = newServer.records();
  const healed = records.find((r) => r.msg === "healed a container's procview views" && r.containerId === reader);
  assert.ok(healed, `no "healed" record for ${reader}:\n${readFileSync(newServer.logFile, "utf8")}`);
  assert.deepEqual(new Set(healed.targets as string[]), new Set(viewFiles.map((view) => view.target)));
  // Healing entered the namespace through the pod's init, which still runs: not one of its short-lived children.
  assert.ok(isRunning(healed.pid as number), `healed through process ${String(healed.pid)}, which has exited`);
  assert.ok(
    records.some((r) => String(r.msg).startsWith("cannot heal container") && r.containerId === leaver),
    `the stopped container ${leaver} is not logged as one that cannot be healed:\n${readFileSync(newServer.logFile, "utf8")}`,
  );
});

test("a pod created while the plugin was down gets its views in place once the plugin is back (Synchronize), without a restart", async () => {
  const hostMemTotal = readFileSync("/proc/meminfo", "utf8").split("\n")[0];
  await stack!.plugin!.stop();
  const orphan = await runPodWith("heal-orphan", ["sleep", "3600"]);
  const before = await exec(orphan, ["head", "-n", "1", "/proc/meminfo"]);
  assert.equal(before.stdout, `${hostMemTotal}\n`, "without the plugin the pod starts with the host's /proc");

  const plugin = await stack!.startPlugin();
  await waitUntil("the pod's own MemTotal", healWithinMs, async () => (await exec(orphan, ["head", "-n", "1", "/proc/meminfo"])).stdout === `${limitLine}\n`).catch((err: Error) => {
    throw new Error(`${err.message}\n--- plugin log ---\n${readFileSync(plugin.logFile, "utf8").slice(-4000)}`);
  });
  for (const view of viewFiles) {
    const result = await exec(orphan, ["cat", view.target]);
    assert.equal(result.exitCode, 0, `${view.target}: ${result.stderr}`);
  }
  const bound = plugin.records().find((r) => r.msg === "bound procview views into a running container" && r.containerId === orphan);
  assert.ok(bound, `no "bound" record for ${orphan}`);
  assert.deepEqual(new Set(bound.targets as string[]), new Set(viewFiles.map((view) => view.target)));
  // The pod healed after the crash above already shows the live mount: the plugin leaves it as it is.
  assert.ok(!plugin.records().some((r) => String(r.msg).startsWith("cannot heal") && r.containerId === orphan));
});

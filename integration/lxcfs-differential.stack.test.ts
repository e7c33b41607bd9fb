/**
 * procview's LXCFS-compatible layout against the reference itself: Debian's LXCFS and
 * procview's FUSE server (through the real CLI) mounted side by side on private folders,
 * both read by a process inside a cgroup this test makes (memory limit 64 MiB, cpuset
 * "0", CPU quota 0.5). Every file both render for the reader is compared line by line:
 * equal, equal within a tolerance where the cgroup's usage moves between the two reads,
 * or named below as an intentional difference with the reason.
 * Needs root and /dev/fuse; LXCFS and procps `free` run from private Debian packages.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, test } from "node:test";
import { viewFiles } from "../core/views.ts";
import { createLimitedCgroup, type LimitedCgroup } from "../bench/limited-cgroup.ts";
import { debianTool } from "./debian-tools.ts";
import { startLxcfs, type Lxcfs } from "./lxcfs.ts";
import { startProcviewFuse, type ProcviewFuse } from "./procview-process.ts";

const limits = { memoryBytes: 64 * 1024 * 1024, cpus: "0", cpuQuotaUs: 50_000, cpuPeriodUs: 100_000 };
const limitKiB = limits.memoryBytes / 1024;
/** The reader's own `cat` and `sh` come and go between the two reads: some 100-300 kB each. */
const usageToleranceKiB = 4096;
/** Per-CPU idle moves 100 ticks a second; the two reads are milliseconds apart. */
const idleToleranceTicks = 50;

/**
 * meminfo lines that intentionally differ. LXCFS 5.0.3 copies every line it does not
 * compute from the host's /proc/meminfo; procview computes these from the cgroup's
 * memory.stat (slab_reclaimable, kernel_stack, pagetables, sec_pagetables, percpu,
 * file_thp, zswap, zswapped on v2) and shows 0 where the cgroup version has no such
 * counter (all of them on v1): the host's figure would charge the whole host's kernel
 * memory, huge pages and zswap to the container (views/render/meminfo.ts).
 */
const intentionallyDifferentMeminfo = new Set([
  // LXCFS passes these host figures through; no cgroup counts them, so procview shows 0
  // (its Unevictable and FileHugePages are the cgroup's).
  "Mlocked", "ShmemPmdMapped", "FilePmdMapped",
  "KReclaimable", "KernelStack", "PageTables", "SecPageTables", "Percpu", "FileHugePages", "Zswap", "Zswapped",
]);
/** Host lines both pass through unchanged but that move with other host processes between the two reads. */
const movingHostMeminfo = new Set(["Committed_AS", "VmallocUsed"]);
/** Lines of the cgroup's own usage: equal up to what the reader's processes change between the reads. */
const usageMeminfo = new Set([
  "MemFree", "MemAvailable", "Cached", "Active", "Inactive", "Active(anon)", "Inactive(anon)", "Active(file)",
  "Inactive(file)", "Unevictable", "AnonPages", "Mapped", "Shmem", "Dirty", "Writeback", "AnonHugePages",
]);
/**
 * Whole files that intentionally differ, so they are not compared:
 * - proc/uptime: both count from the init of the reader's pid namespace when it has its
 *   own; for a reader in the host's pid namespace (this test's) LXCFS counts from the host's
 *   pid 1, procview from the oldest process of the reader's cgroup.
 * - proc/loadavg: LXCFS without --enable-loadavg (its default, and Debian's service's)
 *   passes the host's load through; procview always averages the cgroup's own tasks.
 * - proc/diskstats: both list every host block device (zero lines for devices the cgroup
 *   never used: the devices are compared below); their counters come from different
 *   blkio files (LXCFS: the CFQ/BFQ ones, procview: the throttle ones any scheduler keeps).
 */
const intentionallyDifferentFiles = ["proc/uptime", "proc/loadavg", "proc/diskstats"];

let cgroup: LimitedCgroup;
let lxcfs: Lxcfs | undefined;
let procview: ProcviewFuse | undefined;

before(async () => {
  cgroup = createLimitedCgroup("procview-lxcfs-diff", limits);
  lxcfs = await startLxcfs();
  procview = await startProcviewFuse();
});

after(async () => {
  await procview?.stop();
  await lxcfs?.stop();
  await cgroup?.remove();
});

/**
 * Runs `script` with `sh` inside the test cgroup (moved in before it does anything) and
 * returns its standard output; `args` become "$@", `wrapper` runs sh (e.g. unshare).
 */
/** A reader stuck on a FUSE file is killed, so the test fails instead of hanging. */
const readerTimeoutMs = 60_000;

async function runInCgroup(script: string, args: string[] = [], wrapper: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const argv = [...wrapper, "sh", "-c", `read _ && ${script}`, "sh", ...args];
  const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], env });
  let output = "";
  let errors = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (errors += chunk));
  const exited = once(child, "exit");
  await once(child, "spawn");
  try {
    cgroup.addProcess(child.pid!);
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  }
  child.stdin.end("go\n");
  const timer = setTimeout(() => child.kill("SIGKILL"), readerTimeoutMs);
  const [code, signal] = (await exited) as [number | null, string | null];
  clearTimeout(timer);
  assert.equal(code, 0, `${script} failed (${signal ?? "exited"}${signal === "SIGKILL" ? ` after ${readerTimeoutMs} ms` : ""}): ${errors}`);
  return output;
}

/** The same view through LXCFS and through procview, read back to back by one process in the cgroup. */
async function readBoth(view: string): Promise<{ lxcfs: string; procview: string }> {
  const separator = "\n=== procview-lxcfs-differential ===\n";
  const output = await runInCgroup(`cat "$1" && printf '${separator.replaceAll("\n", "\\n")}' && cat "$2"`, [
    `${lxcfs!.mountpoint}/${view}`,
    `${procview!.mountpoint}/${view}`,
  ]);
  const [fromLxcfs, fromProcview] = output.split(separator);
  assert.ok(fromProcview !== undefined, `no separator in:\n${output}`);
  return { lxcfs: fromLxcfs, procview: fromProcview };
}

/** meminfo as ordered [name, kB] pairs. */
function meminfoEntries(text: string): Array<[string, number]> {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const match = /^([^:]+):\s+(\d+)( kB)?$/.exec(line);
      assert.ok(match, `not a meminfo line: ${JSON.stringify(line)}`);
      return [match[1], Number(match[2])];
    });
}

test("meminfo: the same lines in the same order; limit, swap and host lines equal, usage within tolerance", async () => {
  const both = await readBoth("proc/meminfo");
  const fromLxcfs = meminfoEntries(both.lxcfs);
  const fromProcview = new Map(meminfoEntries(both.procview));
  assert.deepEqual([...fromProcview.keys()], fromLxcfs.map(([name]) => name));
  assert.equal(fromProcview.get("MemTotal"), limitKiB, "procview's MemTotal is the cgroup's limit");

  for (const [name, expected] of fromLxcfs) {
    if (intentionallyDifferentMeminfo.has(name) || movingHostMeminfo.has(name)) continue;
    const actual = fromProcview.get(name)!;
    if (usageMeminfo.has(name)) {
      assert.ok(Math.abs(actual - expected) <= usageToleranceKiB, `${name}: procview ${actual} kB, LXCFS ${expected} kB`);
    } else {
      assert.equal(actual, expected, `${name}: procview ${actual}, LXCFS ${expected}`);
    }
  }
  // The free figures must be the limited cgroup's, not the host's (24 GB here).
  assert.ok(fromProcview.get("MemAvailable")! <= limitKiB && fromProcview.get("MemAvailable")! > limitKiB / 2);
});

test("cpuinfo: the same processors (the cpuset's one), renumbered from 0, same fields", async () => {
  const both = await readBoth("proc/cpuinfo");
  // The clock moves with frequency scaling between the two reads.
  const steady = (text: string) => text.split("\n").filter((line) => !line.startsWith("cpu MHz"));
  assert.deepEqual(steady(both.procview), steady(both.lxcfs));
  const processors = both.procview.split("\n").filter((line) => line.startsWith("processor"));
  assert.deepEqual(processors, ["processor\t: 0"]);
});

test("sys/devices/system/cpu/online: the cpuset", async () => {
  const both = await readBoth("sys/devices/system/cpu/online");
  assert.equal(both.procview, both.lxcfs);
  assert.equal(both.procview, "0\n");
});

test("stat: the same cpu lines, the cgroup's user and system time, the CPU's idle", async () => {
  const both = await readBoth("proc/stat");
  const cpuLines = (text: string) =>
    text
      .split("\n")
      .filter((line) => line.startsWith("cpu"))
      .map((line) => line.split(/\s+/));
  const fromLxcfs = cpuLines(both.lxcfs);
  const fromProcview = cpuLines(both.procview);
  assert.deepEqual(fromProcview.map((fields) => fields[0]), ["cpu", "cpu0"]);
  assert.deepEqual(fromProcview.map((fields) => fields[0]), fromLxcfs.map((fields) => fields[0]));
  for (const [index, fields] of fromProcview.entries()) {
    const reference = fromLxcfs[index];
    assert.equal(fields.length, reference.length, `${fields[0]} field count`);
    for (let column = 1; column < fields.length; column++) {
      const tolerance = column === 4 ? idleToleranceTicks : 2;
      const difference = Math.abs(Number(fields[column]) - Number(reference[column]));
      assert.ok(difference <= tolerance, `${fields[0]} column ${column}: procview ${fields[column]}, LXCFS ${reference[column]}`);
    }
  }
  // Everything after the cpu lines is the host's in both; its counters move, its keys do not.
  const keys = (text: string) => text.split("\n").filter((line) => line !== "" && !line.startsWith("cpu")).map((line) => line.split(" ")[0]);
  assert.deepEqual(keys(both.procview), keys(both.lxcfs));
});

test("swaps: the same header and the same swap entries (none without host swap)", async () => {
  const both = await readBoth("proc/swaps");
  // Same columns; the spacing differs (procview keeps the kernel's own header, LXCFS 5.0.3 single tabs).
  const rows = (text: string) => text.split("\n").filter((line) => line !== "").map((line) => line.split(/\s+/));
  assert.deepEqual(rows(both.procview), rows(both.lxcfs));
  assert.deepEqual(rows(both.procview)[0], ["Filename", "Type", "Size", "Used", "Priority"]);
});

test("diskstats: the same devices in the same order, as the host lists them", async () => {
  const both = await readBoth("proc/diskstats");
  const devices = (text: string) => text.split("\n").filter((line) => line.trim() !== "").map((line) => line.trim().split(/\s+/).slice(0, 3).join(" "));
  assert.ok(devices(both.procview).length > 0, "procview lists the host's devices");
  assert.deepEqual(devices(both.procview), devices(both.lxcfs));
});

test("the files not compared are served by both", async () => {
  for (const view of intentionallyDifferentFiles) {
    assert.ok(viewFiles.some((file) => file.path === view), `${view} is a procview view`);
    const both = await readBoth(view);
    assert.notEqual(both.lxcfs, "", `LXCFS serves ${view}`);
    assert.notEqual(both.procview, "", `procview serves ${view}`);
  }
});

test("a process that binds the LXCFS-compatible files over its own /proc sees the cgroup's limits", async () => {
  // As the NRI plugin arranges for a container, here in a private mount namespace (unshare -m).
  const binds = viewFiles.map((view) => `mount --bind "${procview!.mountpoint}/${view.path}" ${view.target}`).join(" && ");
  const procps = await debianTool({ binary: { package: "procps", path: "usr/bin/free" }, needs: ["libproc2-0"], suite: "bookworm" });
  const output = await runInCgroup(
    `${binds} && "$1" -k && echo processors $(grep -c ^processor /proc/cpuinfo) && echo online $(cat /sys/devices/system/cpu/online)`,
    [procps.binary],
    ["unshare", "--mount", "--propagation", "private"],
    procps.env,
  );
  const memLine = output.split("\n").find((line) => line.startsWith("Mem:"));
  assert.ok(memLine, `no Mem: line in free's output:\n${output}`);
  const [, total, used, free] = memLine.split(/\s+/).map(Number);
  assert.equal(total, limitKiB, `free -k total:\n${output}`);
  assert.ok(used >= 0 && free > limitKiB / 2 && free <= limitKiB, `free -k used/free:\n${output}`);
  assert.match(output, /^processors 1$/m);
  assert.match(output, /^online 0$/m);
});

/**
 * Real programs reading procview's views over time, as users run them in a container
 * limited to 200 MiB, cpuset 0 and a 0.5 CPU quota: procps `free -s`, `top -b`, `vmstat`,
 * sysstat `iostat` and `mpstat`, Node's `os.loadavg()`, `os.uptime()`, `os.totalmem()`.
 * They run under real load (a busy loop, a memory grower, direct I/O) and their numbers
 * must move the way the kernel's would. The container is whatever runs the scripts: a
 * cgroup with binds in private namespaces, or a real containerd container (the *.stack
 * tests). procps and sysstat are Debian's, unpacked privately like containerd.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { parseCgroupLayout } from "../views/cgroup/layout.ts";
import { readCpuSnapshot } from "../views/cgroup/cpu.ts";
import { debianPackage } from "./debian-packages.ts";

export const consumerLimits = { memoryBytes: 200 * 1024 * 1024, cpus: "0", cpuQuotaUs: 50_000, cpuPeriodUs: 100_000 };
const limitKiB = consumerLimits.memoryBytes / 1024;

/** Folders of the programs the scenarios run (absolute: a busybox sh runs its own applets before PATH's). */
export interface ConsumerBins {
  /** procps: free, top, vmstat. */
  procps: string;
  /** sysstat: iostat, mpstat. */
  sysstat: string;
  /** Node. */
  node: string;
}

/** procps, its library and sysstat from Debian, unpacked (never installed) under .cache/, and this Node. */
export interface ConsumerTools {
  bins: ConsumerBins;
  /** The library procps needs beyond the host's libc and friends (libproc2). */
  libDir: string;
}

export async function provisionConsumerTools(): Promise<ConsumerTools> {
  const [procps, libproc2, sysstat] = await Promise.all(["procps", "libproc2-0", "sysstat"].map((name) => debianPackage(name, "bookworm")));
  return {
    bins: { procps: join(procps, "usr", "bin"), sysstat: join(sysstat, "usr", "bin"), node: dirname(process.execPath) },
    libDir: join(libproc2, "lib", "x86_64-linux-gnu"),
  };
}

/** Node helpers the scenarios run inside the container, written into `dir` (CommonJS: no package.json there). */
export async function writeConsumerScripts(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Touches `step` MiB every half second, `steps` times, then holds it all until killed.
  await writeFile(
    join(dir, "grower.cjs"),
    `const [step, steps] = process.argv.slice(2).map(Number);
const blocks = [];
const timer = setInterval(() => {
  blocks.push(Buffer.alloc(step * 1024 * 1024, 1));
  if (blocks.length >= steps) clearInterval(timer);
}, 500);
setInterval(() => {}, 1 << 30);
`,
  );
  // Node's os figures (libuv reads /proc/loadavg, /proc/uptime, /proc/meminfo) now and `seconds` later.
  await writeFile(
    join(dir, "probe.cjs"),
    `const os = require("node:os");
const fs = require("node:fs");
const sample = () => ({
  at: Date.now(),
  loadavg: os.loadavg(),
  uptime: os.uptime(),
  totalmem: os.totalmem(),
  procUptime: fs.readFileSync("/proc/uptime", "utf8").trim().split(" ").map(Number),
});
const first = sample();
setTimeout(() => console.log(JSON.stringify({ first, last: sample() })), Number(process.argv[2]) * 1000);
`,
  );
}

/** The CPU time (seconds) of the cgroup at `relativePath` below every hierarchy root, read from the host. */
export function cgroupCpuSeconds(relativePath: string): () => number {
  const layout = parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
  return () => {
    const { usage } = readCpuSnapshot(layout, relativePath);
    return (usage.user + usage.system) / 1e9;
  };
}

/** Where a scenario runs: a container whose /proc files are procview's views. */
export interface ConsumerContainer {
  /**
   * Runs `script` with sh inside the container, LD_LIBRARY_PATH set for `bins`; resolves
   * with its standard output, rejects on a non-zero exit or once `timeoutMs` have passed.
   */
  run(script: string, timeoutMs: number): Promise<string>;
  /** The programs' folders, as the container sees them. */
  readonly bins: ConsumerBins;
  /** The wall clock (ms) at or just before the container's first process started. */
  startedAt(): number;
  /** The container cgroup's CPU time (user + system, seconds) as the host reads it: the kernel's truth. */
  cpuSeconds(): number;
  /** The folder holding writeConsumerScripts()'s files, as the container sees it. */
  readonly scriptsDir: string;
  /** A writable folder on a block device, as the container sees it. */
  readonly scratchDir: string;
}

/**
 * What the kernel says the container's CPU did: its cgroup's CPU time, sampled from the
 * host while the tools run. Every 1 s window of it is a rate the tools' 1 s intervals may
 * show; the quota caps it at 50 % of the one visible CPU, and on a busy machine (the CI
 * machine's 2 cores shared with other work) the busy loop can get less than its quota.
 */
class CpuUsageRecorder {
  private readonly samples: Array<{ at: number; seconds: number }> = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly usageSeconds: () => number;

  constructor(usageSeconds: () => number) {
    this.usageSeconds = usageSeconds;
    this.sample();
    this.timer = setInterval(() => this.sample(), 200);
  }

  /** The lowest and highest busy % (of one CPU) over any 1 s window seen. */
  stop(): { min: number; max: number } {
    clearInterval(this.timer);
    this.sample();
    let min = Infinity;
    let max = -Infinity;
    for (const [i, start] of this.samples.entries()) {
      const end = this.samples.slice(i + 1).find((sample) => sample.at - start.at >= 1000);
      if (end === undefined) break;
      const percent = ((end.seconds - start.seconds) / ((end.at - start.at) / 1000)) * 100;
      min = Math.min(min, percent);
      max = Math.max(max, percent);
    }
    return { min, max };
  }

  private sample(): void {
    this.samples.push({ at: Date.now(), seconds: this.usageSeconds() });
  }
}

/**
 * A tool's 1 s busy % must be one the cgroup really had: within the recorded 1 s rates,
 * ±10 points for windows that do not line up (a 100 ms CFS period, half of it the quota,
 * gained or lost at an end; 10 ms ticks; the tool's own timer). The recorded rates carry
 * the quota's cap (about 50 %, up to 60 % over a window that catches an extra period).
 */
function assertKernelBusy(busy: number, kernel: { min: number; max: number }, what: string): void {
  const low = Math.max(0, kernel.min - 10);
  const high = kernel.max + 10;
  assert.ok(busy >= low && busy <= high, `${what}: ${busy} % busy; the cgroup's 1 s rates were ${kernel.min.toFixed(1)}-${kernel.max.toFixed(1)} % of its one CPU`);
}

/** Registers the consumer tests; `container()` is called when they run (after the caller's before()). */
export function consumerTests(container: () => ConsumerContainer): void {
  test("free -k -s 1: MemTotal is the 200 MiB limit and used grows as a process grows its memory", async () => {
    const { run, bins, scriptsDir } = container();
    const script = [
      "grower=; trap 'kill $grower 2>/dev/null' EXIT",
      `"${bins.node}/node" "${scriptsDir}/grower.cjs" 20 6 >/dev/null 2>&1 & grower=$!`,
      `"${bins.procps}/free" -k -s 1 -c 8`,
    ].join("\n");
    const output = await run(script, 30_000);
    const samples = parseFree(output);
    assert.equal(samples.length, 8, output);
    for (const sample of samples) {
      assert.equal(sample.total, limitKiB, output);
      assert.ok(sample.used >= 0 && sample.used <= sample.total, output);
    }
    // The grower touches 120 MiB over 3 s once Node has started (seconds on a loaded machine);
    // free's first sample is taken as it starts, its last 7 s later.
    const grown = samples.at(-1)!.used - samples[0].used;
    assert.ok(grown >= 80 * 1024, `used grew by ${grown} kB while 120 MiB were touched:\n${output}`);
    samples.slice(1).forEach((sample, i) => assert.ok(sample.used >= samples[i].used - 4096, `used never falls while memory is only added:\n${output}`));
  });

  test("top, vmstat, mpstat under a busy loop show the CPU time the kernel gives the cgroup (0.5 quota); Node's loadavg rises, uptime counts from the container's start", async () => {
    const { run, bins, scriptsDir, scratchDir, startedAt, cpuSeconds } = container();
    const script = [
      // Background jobs go with the script whatever step fails, and hold none of its output
      // open (an exec through the CRI returns only once its output is closed).
      "busy= probe=; trap 'kill $busy $probe 2>/dev/null' EXIT",
      "sh -c 'while :; do :; done' >/dev/null 2>&1 & busy=$!",
      `"${bins.node}/node" "${scriptsDir}/probe.cjs" 16 > "${scratchDir}/probe.json" 2>&1 & probe=$!`,
      "sleep 1",
      `echo '=== top'; "${bins.procps}/top" -b -n 3 -d 1`,
      `echo '=== vmstat'; "${bins.procps}/vmstat" 1 3`,
      `echo '=== mpstat'; "${bins.sysstat}/mpstat" 1 2`,
      `wait $probe; probe=; echo '=== probe'; cat "${scratchDir}/probe.json"; rm -f "${scratchDir}/probe.json"`,
    ].join("\n");
    const recorder = new CpuUsageRecorder(cpuSeconds);
    let kernel: { min: number; max: number };
    let output: string;
    try {
      output = await run(script, 60_000);
    } finally {
      kernel = recorder.stop();
    }
    const sections = splitSections(output);
    assert.ok(kernel.max >= 20 && kernel.max <= 70, `the busy loop ran under its quota: the cgroup's 1 s rates were ${kernel.min}-${kernel.max} %`);

    // Each tool's first report counts from boot; the later ones are 1 s intervals.
    const topFrames = parseTopCpu(sections.get("top") ?? "");
    assert.equal(topFrames.length, 3, output);
    for (const frame of topFrames.slice(1)) assertKernelBusy(frame.user + frame.system, kernel, `top %Cpu(s) ${JSON.stringify(frame)}`);

    const vmstat = parseVmstat(sections.get("vmstat") ?? "");
    assert.equal(vmstat.length, 3, output);
    // The busy loop is runnable throughout, and vmstat itself runs while it reads.
    for (const line of vmstat) assert.ok(line.r >= 1, `vmstat r ${line.r}:\n${sections.get("vmstat")}`);
    for (const line of vmstat.slice(1)) assertKernelBusy(line.us + line.sy, kernel, `vmstat us+sy ${JSON.stringify(line)}`);

    const mpstat = parseMpstatAll(sections.get("mpstat") ?? "");
    assert.equal(mpstat.length, 2, output);
    for (const line of mpstat) assertKernelBusy(line.usr + line.sys, kernel, `mpstat all ${JSON.stringify(line)}`);

    const probe = JSON.parse(sections.get("probe") ?? "null") as { first: NodeSample; last: NodeSample } | null;
    assert.ok(probe, output);
    const { first, last } = probe;
    assert.equal(first.totalmem, consumerLimits.memoryBytes, "os.totalmem() is the memory limit");
    for (const sample of [first, last]) {
      const age = (sample.at - startedAt()) / 1000;
      assert.ok(Math.abs(sample.uptime - age) <= 2, `os.uptime() ${sample.uptime} s, the container started ${age.toFixed(1)} s before`);
      const [uptime, idle] = sample.procUptime;
      assert.ok(idle >= 0 && idle <= uptime * 1 + 0.05, `/proc/uptime idle ${idle} within uptime ${uptime} × 1 visible CPU`);
    }
    const elapsed = (last.at - first.at) / 1000;
    assert.ok(Math.abs(last.procUptime[0] - first.procUptime[0] - elapsed) <= 1, `uptime advances with the clock: ${first.procUptime} -> ${last.procUptime} over ${elapsed} s`);
    // CPU 0 idles half the time under the quota: idle must move (it read 0.00 in a reused cgroup).
    assert.ok(last.procUptime[1] - first.procUptime[1] >= elapsed * 0.2, `idle moves: ${first.procUptime} -> ${last.procUptime}`);
    // Kernel semantics: 5 s samples of the cgroup's R/D threads (the busy loop, at least)
    // from 0: after 15 s of one runnable thread the 1-minute average is 1 - (1884/2048)^3 = 0.22.
    assert.ok(last.loadavg[0] > first.loadavg[0] && last.loadavg[0] >= 0.1, `os.loadavg() rises under load: ${first.loadavg} -> ${last.loadavg}`);
    assert.ok(last.loadavg[0] <= 3, `a few runnable threads, not the host's load: ${last.loadavg}`);
  });

  test("iostat -p ALL after direct I/O: the host's devices, the container's counters, rates over the container's uptime", async () => {
    const { run, bins, scratchDir } = container();
    const writtenKiB = 64 * 1024;
    const script = [
      `dd if=/dev/zero of="${scratchDir}/direct-io" bs=1M count=${writtenKiB / 1024} oflag=direct`,
      // -p ALL reads /proc/diskstats; without it sysstat reads /sys/block/<dev>/stat, the host's (README).
      `echo '=== iostat'; "${bins.sysstat}/iostat" -p ALL -d -k`,
      "echo '=== diskstats'; cat /proc/diskstats",
      "echo '=== uptime'; cat /proc/uptime",
      `rm -f "${scratchDir}/direct-io"`,
    ].join("\n");
    const sections = splitSections(await run(script, 30_000));
    const diskstats = parseDiskstats(sections.get("diskstats") ?? "");
    const hostDevices = parseDiskstats(readFileSync("/proc/diskstats", "utf8")).map((disk) => disk.name);
    assert.deepEqual(diskstats.map((disk) => disk.name), hostDevices, "every host device is listed, never an empty file");
    const uptime = Number((sections.get("uptime") ?? "").split(" ")[0]);
    for (const disk of diskstats) {
      // Host counters count since boot (gigabytes by now); the container wrote 64 MiB.
      assert.ok(disk.writtenKiB <= writtenKiB + 1024, `${disk.name}: ${disk.writtenKiB} kB written, the container wrote ${writtenKiB} kB`);
    }
    const iostat = parseIostat(sections.get("iostat") ?? "");
    assert.ok(iostat.length > 0, `iostat finds the devices:\n${sections.get("iostat")}`);
    for (const row of iostat) {
      const disk = diskstats.find((candidate) => candidate.name === row.device);
      assert.ok(disk, `iostat's ${row.device} is a device of /proc/diskstats`);
      assert.ok(Math.abs(row.writtenKiB - disk.writtenKiB) <= 1024, `iostat and /proc/diskstats agree on ${row.device}: ${row.writtenKiB} vs ${disk.writtenKiB} kB`);
      // Rates since the container's start: no more than it wrote over its own uptime (×1000 with host counters).
      assert.ok(row.writtenKiBPerSecond <= writtenKiB / Math.max(uptime, 1) + 1, `${row.device} ${row.writtenKiBPerSecond} kB/s over an uptime of ${uptime} s`);
    }
    const counted = diskstats.reduce((sum, disk) => sum + disk.writtenKiB, 0);
    // Where the kernel's blkio/io counts this cgroup's direct I/O (v2 io.stat), the view shows it;
    // v1 blkio on this project's 6.18 CI kernel counts nothing, and every line reads 0.
    if (counted > 0) assert.ok(counted >= writtenKiB * 0.9, `the cgroup counted ${counted} kB of the ${writtenKiB} kB written`);
  });
}

interface NodeSample {
  at: number;
  loadavg: [number, number, number];
  uptime: number;
  totalmem: number;
  procUptime: [number, number];
}

/** Output split at "=== name" lines. */
export function splitSections(output: string): Map<string, string> {
  const sections = new Map<string, string>();
  let name = "";
  for (const line of output.split("\n")) {
    const header = /^=== (\S+)$/.exec(line);
    if (header) name = header[1];
    else sections.set(name, (sections.get(name) ?? "") + line + "\n");
  }
  return sections;
}

export interface FreeSample {
  total: number;
  used: number;
  free: number;
  available: number;
}

/** `free -k` "Mem:" rows: total used free shared buff/cache available. */
export function parseFree(text: string): FreeSample[] {
  return [...text.matchAll(/^Mem:\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s+(\d+)$/gm)].map((match) => ({
    total: Number(match[1]),
    used: Number(match[2]),
    free: Number(match[3]),
    available: Number(match[4]),
  }));
}

/** `top -b` "%Cpu(s):" rows (us, sy, id). */
export function parseTopCpu(text: string): Array<{ user: number; system: number; idle: number }> {
  return [...text.matchAll(/^%Cpu\(s\):\s*([\d.]+) us,\s*([\d.]+) sy,.*?([\d.]+) id,/gm)].map((match) => ({
    user: Number(match[1]),
    system: Number(match[2]),
    idle: Number(match[3]),
  }));
}

/** `vmstat` data rows by its header's column names. */
export function parseVmstat(text: string): Array<Record<string, number>> {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  const header = lines.find((line) => /^\s*r\s+b\s/.test(line))?.trim().split(/\s+/);
  if (header === undefined) return [];
  return lines
    .filter((line) => /^\s*\d/.test(line))
    .map((line) => Object.fromEntries(line.trim().split(/\s+/).map((value, i) => [header[i], Number(value)])));
}

/** `mpstat` interval rows for CPU "all" (not the Average line). */
export function parseMpstatAll(text: string): Array<{ usr: number; sys: number; idle: number }> {
  const lines = text.split("\n");
  const header = lines.find((line) => line.includes("%usr"))?.trim().split(/\s+/);
  if (header === undefined) return [];
  const column = (name: string) => header.indexOf(name);
  return lines
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[column("CPU")] === "all" && !fields[0].startsWith("Average"))
    .map((fields) => ({ usr: Number(fields[column("%usr")]), sys: Number(fields[column("%sys")]), idle: Number(fields[column("%idle")]) }));
}

/** `iostat -d -k` device rows of the first report (since the start). */
export function parseIostat(text: string): Array<{ device: string; writtenKiBPerSecond: number; writtenKiB: number }> {
  const lines = text.split("\n");
  const headerIndex = lines.findIndex((line) => line.startsWith("Device"));
  if (headerIndex < 0) return [];
  const header = lines[headerIndex].trim().split(/\s+/);
  const rows = [];
  for (const line of lines.slice(headerIndex + 1)) {
    if (line.trim() === "") break;
    const fields = line.trim().split(/\s+/);
    rows.push({ device: fields[0], writtenKiBPerSecond: Number(fields[header.indexOf("kB_wrtn/s")]), writtenKiB: Number(fields[header.indexOf("kB_wrtn")]) });
  }
  return rows;
}

/** /proc/diskstats names and kB written (sectors written / 2). */
export function parseDiskstats(text: string): Array<{ name: string; writtenKiB: number }> {
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length >= 14)
    .map((fields) => ({ name: fields[2], writtenKiB: Number(fields[9]) / 2 }));
}

import { test } from "node:test";
import assert from "node:assert/strict";
import { readCpuSnapshot, type CpuSnapshot } from "../cgroup/cpu.ts";
import { v1FixtureLayout, v2FixtureLayout } from "../cgroup/testdata/layout.ts";
import { HostFiles } from "../host/host-files.ts";
import { fixtureProcDir, fixtureSysDir } from "../host/testdata/paths.ts";
import { renderCpuinfo, renderCpuOnline } from "./cpuinfo.ts";
import { containerCpuLines, renderStat } from "./stat.ts";
import { renderUptime } from "./uptime.ts";
import { visibleCpus } from "./visible-cpus.ts";

const host = new HostFiles({ procDir: fixtureProcDir, sysDir: fixtureSysDir });
const hostCpus = [0, 1, 2, 3];
const noCut = { limitByQuota: false };

test("visible CPUs: the cpuset's online CPUs, cut to ceil(quota) only when asked", () => {
  assert.deepEqual(visibleCpus([1, 3], hostCpus, 1.5, noCut), [1, 3]);
  assert.deepEqual(visibleCpus([0, 1, 2, 3], hostCpus, 1.5, { limitByQuota: true }), [0, 1]);
  assert.deepEqual(visibleCpus([0, 1, 2, 3], hostCpus, 0.2, { limitByQuota: true }), [0], "at least one CPU");
  assert.deepEqual(visibleCpus([0, 1, 2, 3], hostCpus, Infinity, { limitByQuota: true }), [0, 1, 2, 3]);
  assert.deepEqual(visibleCpus([2, 7], hostCpus, Infinity, noCut), [2], "offline CPUs are not shown");
  assert.deepEqual(visibleCpus(undefined, [3, 1, 0, 2], Infinity, noCut), [0, 1, 2, 3], "no cpuset: the host's CPUs");
  assert.deepEqual(visibleCpus([9], hostCpus, Infinity, noCut), [0, 1, 2, 3], "a cpuset with no online CPU: the host's CPUs");
});

test("cpuinfo: the host blocks of the visible CPUs, renumbered from 0", () => {
  const text = renderCpuinfo([1, 3], host.cpuinfo());
  const processors = [...text.matchAll(/^processor\t: (\d+)$/gm)].map((match) => Number(match[1]));
  assert.deepEqual(processors, [0, 1]);
  assert.deepEqual([...text.matchAll(/^core id\t\t: (\d+)$/gm)].map((match) => Number(match[1])), [1, 3], "the rest of each block is the host's");
  assert.equal(text, `processor\t: 0\n${host.cpuinfo().blocks.get(1)}processor\t: 1\n${host.cpuinfo().blocks.get(3)}`);
});

test("online: 0…n-1 as a kernel CPU list", () => {
  assert.equal(renderCpuOnline([1, 3]), "0-1\n");
  assert.equal(renderCpuOnline([5]), "0\n");
});

test("stat v1: per-CPU user/system from cpuacct, idle the rest of the host CPU's time, usage off the cpuset folded in", () => {
  const cpu = readCpuSnapshot(v1FixtureLayout(), "/limited");
  const text = renderStat(cpu, [1, 3], host.stat(), { running: 2, blocked: 1, total: 4, lastPid: 12 });
  assert.equal(
    text,
    [
      "cpu  3100 0 750 188550 0 0 0 0 0 0",
      "cpu0 2100 0 500 93600 0 0 0 0 0 0",
      "cpu1 1000 0 250 94950 0 0 0 0 0 0",
      "intr 1123937 0 0 0",
      "ctxt 2319814",
      "btime 1795876751",
      "processes 20323",
      "procs_running 2",
      "procs_blocked 1",
      "softirq 404829 0 45404 38 7454 101209 0 3 136468 0 114253",
      "",
    ].join("\n"),
  );
});

test("stat v2: usage shared evenly over the visible CPUs; without task counts the host's procs lines stay", () => {
  const cpu = readCpuSnapshot(v2FixtureLayout(), "/pod/ctr");
  const text = renderStat(cpu, [0, 1], host.stat(), undefined);
  assert.match(text, /^cpu  2000 0 1000 188900 0 0 0 0 0 0\ncpu0 1000 0 500 94200 0 0 0 0 0 0\ncpu1 1000 0 500 94700 0 0 0 0 0 0\n/);
  assert.match(text, /^procs_running 7$/m);
});

test("stat: user+system+idle of every line never goes backwards as the cgroup and the host advance", () => {
  let hostStat = host.stat();
  let usage = 0;
  let previous = containerCpuLines(cpuWithUsage(usage), [0, 1], hostStat).map(sumOf);
  for (let step = 1; step <= 50; step++) {
    // Each step the host's CPUs advance 100 ticks; the cgroup uses a varying share of them.
    usage += ((step * 37) % 100) * 1e7;
    hostStat = { ...hostStat, cpus: new Map([...hostStat.cpus].map(([n, ticks]) => [n, ticks.map((value, i) => (i === 3 ? value + 100 : value))])) };
    const lines = containerCpuLines(cpuWithUsage(usage), [0, 1], hostStat);
    lines.forEach((line, i) => {
      assert.ok(sumOf(line) >= previous[i], `cpu${i} step ${step}`);
      assert.ok(line.idle >= 0);
    });
    previous = lines.map(sumOf);
  }
});

test("stat: a cgroup reporting more time than the host CPU had shows idle 0, not a negative number", () => {
  const lines = containerCpuLines(cpuWithUsage(1e15), [0], host.stat());
  assert.equal(lines[0].idle, 0);
});

test("uptime: since the container started; idle is the visible CPUs' time the cgroup did not use (v1 and v2)", () => {
  const v1 = readCpuSnapshot(v1FixtureLayout(), "/limited");
  assert.equal(renderUptime(host.uptime(), 500, v1, 2, 995.5), "995.50 1952.50\n");
  assert.equal(renderUptime(host.uptime(), undefined, v1, 2, 1000.5), "1000.50 1962.50\n", "a process of the host: the host's uptime");
  assert.equal(renderUptime({ uptime: 10, idle: 0 }, 900, v1, 2, 1), "1.00 0.00\n", "never negative");
  const v2 = readCpuSnapshot(v2FixtureLayout(), "/pod/ctr");
  assert.equal(renderUptime(host.uptime(), 300, v2, 2, 997.5), "997.50 1965.00\n");
});

test("uptime: a cgroup older than the container (reused, or the root) is charged its average rate over the uptime only", () => {
  const v1 = readCpuSnapshot(v1FixtureLayout(), "/limited"); // 38.5 s of CPU time
  assert.equal(renderUptime(host.uptime(), 500, v1, 2, 2 * 995.5), "995.50 1971.75\n", "half its life in the container: half its time");
  // A reused cgroup that burned 10,000 CPU-seconds before this container, which then idles:
  // idle grows with uptime and stays within uptime × CPUs (reported 0.00 when all of it was charged).
  let previousIdle = -1;
  for (let seconds = 1; seconds <= 600; seconds += 7) {
    const [uptime, idle] = renderUptime({ uptime: 50_000 + seconds, idle: 0 }, 5_000_000, cpuWithUsage(1e13), 2, 20_000 + seconds).trim().split(" ").map(Number);
    assert.equal(uptime, seconds);
    assert.ok(idle > previousIdle && idle <= uptime * 2, `idle ${idle} at ${seconds} s`);
    previousIdle = idle;
  }
});

function cpuWithUsage(userNs: number): CpuSnapshot {
  return { cpuset: [0, 1], quotaCpus: Infinity, usage: { user: userNs, system: 0 }, perCpu: undefined };
}

function sumOf(line: { user: number; system: number; idle: number }): number {
  return line.user + line.system + line.idle;
}

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseHostCpuinfo } from "./cpuinfo.ts";
import { parseHostDiskstats } from "./diskstats.ts";
import { elapsedTicks, parseHostStat } from "./stat.ts";
import { parseHostUptime } from "./uptime.ts";
import { fixtureProcDir } from "./testdata/paths.ts";

const fixture = (name: string) => readFileSync(`${fixtureProcDir}/${name}`, "latin1");

test("cpuinfo splits into one block per CPU, without the processor line", () => {
  const cpuinfo = parseHostCpuinfo(fixture("cpuinfo"));
  assert.deepEqual([...cpuinfo.blocks.keys()], [0, 1, 2, 3]);
  assert.equal(cpuinfo.preamble, "");
  const block = cpuinfo.blocks.get(2)!;
  assert.match(block, /^vendor_id\t: GenuineIntel\n/);
  assert.match(block, /^core id\t\t: 2$/m);
  assert.ok(block.endsWith("\n\n"));
  assert.doesNotMatch(block, /processor/);
});

test("cpuinfo keeps text before the first processor line, and rejects text without CPUs", () => {
  assert.equal(parseHostCpuinfo("vendor_id : X\nprocessor : 0\nfoo : 1\n").preamble, "vendor_id : X\n");
  assert.throws(() => parseHostCpuinfo("nothing\n"), /no processor lines/);
});

test("stat: per-CPU counters and the other lines in order", () => {
  const stat = parseHostStat(fixture("stat"));
  assert.deepEqual(stat.cpus.get(1), [10000, 100, 3000, 82500, 500, 0, 100, 0, 0, 0]);
  assert.equal(stat.cpus.size, 4);
  assert.deepEqual(stat.otherLines.map((line) => line.split(" ")[0]), ["intr", "ctxt", "btime", "processes", "procs_running", "procs_blocked", "softirq"]);
  assert.equal(elapsedTicks([1, 2, 3, 4, 5, 6, 7, 8, 100, 100]), 36, "guest time is already in user/nice");
  assert.deepEqual(parseHostStat("cpu0 1 2 3 4\n").cpus.get(0), [1, 2, 3, 4, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => parseHostStat("cpu0 1 x 3\n"), /malformed/);
  assert.throws(() => parseHostStat("intr 1\n"), /no per-CPU lines/);
});

test("uptime", () => {
  assert.deepEqual(parseHostUptime("1000.50 3500.25\n"), { uptime: 1000.5, idle: 3500.25 });
  assert.throws(() => parseHostUptime("soon"), /malformed/);
});

test("diskstats: devices with their numbers and as many counters as the kernel prints", () => {
  const disks = parseHostDiskstats(fixture("diskstats"));
  assert.deepEqual(disks.map((disk) => `${disk.major}:${disk.minor} ${disk.name}`), ["7:0 loop0", "254:0 vda", "254:1 vda1", "253:0 zram0"]);
  assert.equal(disks[1].columns, 17);
  assert.equal(parseHostDiskstats("   8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n")[0].columns, 11);
  assert.deepEqual(parseHostDiskstats("   8 0 sda 1 2 3\nnot a device line\n"), [], "lines with too few counters are no devices");
});

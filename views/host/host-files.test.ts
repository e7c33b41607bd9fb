import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HostFiles } from "./host-files.ts";
import { fixtureProcDir, fixtureSysDir } from "./testdata/paths.ts";

test("reads every host file a view needs", () => {
  const host = new HostFiles({ procDir: fixtureProcDir, sysDir: fixtureSysDir });
  assert.equal(host.meminfo().values.get("MemTotal"), 24684096);
  assert.equal(host.stat().cpus.size, 4);
  assert.equal(host.uptime().uptime, 1000.5);
  assert.equal(host.diskstats().length, 4);
  assert.equal(host.loadavg(), "0.52 0.58 0.59 2/345 6789\n");
  assert.equal(host.cpuinfo().blocks.size, 4);
  assert.deepEqual(host.onlineCpus(), [0, 1, 2, 3]);
});

test("cpuinfo and the online list are reused until their time-to-live ends", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "procview-host-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(fixtureProcDir, "cpuinfo"), join(dir, "cpuinfo"));
  mkdirSync(join(dir, "sys/devices/system/cpu"), { recursive: true });
  writeFileSync(join(dir, "sys/devices/system/cpu/online"), "0-3\n");
  let now = 0;
  const host = new HostFiles({ procDir: dir, sysDir: join(dir, "sys"), cpuTopologyTtlMs: 1000, now: () => now });
  assert.deepEqual(host.onlineCpus(), [0, 1, 2, 3]);
  assert.equal(host.cpuinfo().blocks.size, 4);
  writeFileSync(join(dir, "sys/devices/system/cpu/online"), "0-1\n");
  writeFileSync(join(dir, "cpuinfo"), "processor\t: 0\nx : y\n");
  now = 999;
  assert.deepEqual(host.onlineCpus(), [0, 1, 2, 3]);
  assert.equal(host.cpuinfo().blocks.size, 4);
  now = 1000;
  assert.deepEqual(host.onlineCpus(), [0, 1]);
  assert.equal(host.cpuinfo().blocks.size, 1);
});

test("the host's meminfo is reused for its shorter time-to-live", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "procview-host-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "meminfo"), "MemTotal:        1000 kB\n");
  let now = 0;
  const host = new HostFiles({ procDir: dir, hostMemoryTtlMs: 100, cpuTopologyTtlMs: 5000, now: () => now });
  assert.equal(host.meminfo().values.get("MemTotal"), 1000);
  writeFileSync(join(dir, "meminfo"), "MemTotal:        2000 kB\n");
  now = 99;
  assert.equal(host.meminfo().values.get("MemTotal"), 1000);
  now = 100;
  assert.equal(host.meminfo().values.get("MemTotal"), 2000);
});

test("the host's block devices are reused for their time-to-live; a device added shows after it", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "procview-host-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sda = "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n";
  writeFileSync(join(dir, "diskstats"), sda);
  let now = 0;
  const host = new HostFiles({ procDir: dir, hostDevicesTtlMs: 1000, now: () => now });
  assert.deepEqual(host.diskstats().map((disk) => disk.name), ["sda"]);
  writeFileSync(join(dir, "diskstats"), sda + "   8      16 sdb 1 2 3 4 5 6 7 8 9 10 11\n");
  now = 999;
  assert.deepEqual(host.diskstats().map((disk) => disk.name), ["sda"]);
  now = 1000;
  assert.deepEqual(host.diskstats().map((disk) => disk.name), ["sda", "sdb"]);
});

test("without the sysfs online list, the CPUs in cpuinfo are online", () => {
  const host = new HostFiles({ procDir: fixtureProcDir, sysDir: "/nonexistent-procview-sys" });
  assert.deepEqual(host.onlineCpus(), [0, 1, 2, 3]);
});

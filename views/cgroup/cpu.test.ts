import { test } from "node:test";
import assert from "node:assert/strict";
import { parseUsageAll, readCpuPlacement, readCpuSnapshot } from "./cpu.ts";
import { v1FixtureLayout, v2FixtureLayout } from "./testdata/layout.ts";

test("v1: effective cpuset, quota in CPUs, per-CPU usage from cpuacct.usage_all", () => {
  const cpu = readCpuSnapshot(v1FixtureLayout(), "/limited");
  assert.deepEqual(cpu.cpuset, [1, 3]);
  assert.equal(cpu.quotaCpus, 1.5);
  assert.deepEqual(cpu.usage, { user: 31e9, system: 7.5e9 });
  assert.deepEqual(cpu.perCpu?.get(1), { user: 20e9, system: 5e9 });
  assert.equal(cpu.perCpu?.size, 4);
});

test("v1: no quota on the cgroup or its ancestors is Infinity", () => {
  assert.equal(readCpuPlacement(v1FixtureLayout(), "/").quotaCpus, Infinity);
  assert.equal(readCpuPlacement(v1FixtureLayout(), "/limited/inner").quotaCpus, 1.5, "the parent's quota binds the child");
});

test("v2: cpuset inherited from where the controller is enabled, smallest cpu.max over ancestors, cpu.stat usage", () => {
  const cpu = readCpuSnapshot(v2FixtureLayout(), "/pod/ctr");
  assert.deepEqual(cpu.cpuset, [0, 1]);
  assert.equal(cpu.quotaCpus, 2.5);
  assert.deepEqual(cpu.usage, { user: 20e9, system: 10e9 });
  assert.equal(cpu.perCpu, undefined);
});

test("a cgroup that does not exist throws ENOENT", () => {
  assert.throws(() => readCpuSnapshot(v1FixtureLayout(), "/gone"), { code: "ENOENT" });
  assert.throws(() => readCpuPlacement(v2FixtureLayout(), "/gone"), { code: "ENOENT" });
});

test("cpuacct.usage_all parses per CPU and skips its header", () => {
  assert.deepEqual([...parseUsageAll("cpu user system\n0 5 6\n1 7 8\n")], [[0, { user: 5, system: 6 }], [1, { user: 7, system: 8 }]]);
});

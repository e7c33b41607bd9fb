import { test } from "node:test";
import assert from "node:assert/strict";
import { parseProcCgroup } from "../../core/cgroup-path.ts";
import { containerController, readCgroupTasks } from "./tasks.ts";
import { v1FixtureLayout, v2FixtureLayout } from "./testdata/layout.ts";

test("v1: threads and processes of the cgroup and of nested cgroups", () => {
  assert.deepEqual(readCgroupTasks(v1FixtureLayout(), "/limited", "threads").sort(), [101, 102, 103, 104, 105]);
  assert.deepEqual(readCgroupTasks(v1FixtureLayout(), "/limited", "processes").sort(), [101, 102, 104, 105]);
});

test("v2: cgroup.threads and cgroup.procs", () => {
  assert.deepEqual(readCgroupTasks(v2FixtureLayout(), "/pod/ctr", "threads"), [201]);
  assert.deepEqual(readCgroupTasks(v2FixtureLayout(), "/pod/ctr", "processes"), [201]);
});

test("a cgroup that does not exist throws ENOENT", () => {
  assert.throws(() => readCgroupTasks(v1FixtureLayout(), "/gone", "threads"), { code: "ENOENT" });
});

test("the container's hierarchy is the first that places it below the root, whichever controllers it has", () => {
  const memoryOnly = parseProcCgroup("4:memory:/limited\n1:cpu:/\n2:cpuacct:/\n0::/\n");
  assert.equal(containerController(v1FixtureLayout(), memoryOnly), "memory");
  assert.deepEqual(readCgroupTasks(v1FixtureLayout(), memoryOnly, "processes", "memory").sort(), [101, 102, 104, 401]);
  assert.equal(containerController(v1FixtureLayout(), parseProcCgroup("1:cpu:/limited\n4:memory:/limited\n")), "cpu");
  assert.equal(containerController(v1FixtureLayout(), "/limited"), "cpu", "a recorded container: one path for every hierarchy");
  assert.equal(containerController(v2FixtureLayout(), parseProcCgroup("0::/pod/ctr\n")), "cpu", "v2: the unified hierarchy");
  assert.equal(containerController(v1FixtureLayout(), parseProcCgroup("4:memory:/\n1:cpu:/\n0::/\n")), undefined, "a process of the host");
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { readCgroupTasks } from "./tasks.ts";
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

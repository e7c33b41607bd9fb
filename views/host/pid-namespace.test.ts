import { test } from "node:test";
import assert from "node:assert/strict";
import { PidNamespaces } from "./pid-namespace.ts";
import { fixtureProcDir } from "./testdata/paths.ts";

// Fixture: 101 is pid 1 of a namespace holding 102 and 104 (its children) and 103 (joined
// with setns: its parent is outside); 201 is pid 1 of another namespace; 301 is a host process.

test("a process in a container's namespace: the init found up its parent chain", () => {
  const namespaces = new PidNamespaces(fixtureProcDir);
  const noCandidates = () => assert.fail("the parent chain suffices");
  assert.deepEqual(namespaces.initOf(102, noCandidates), { pid: 101, startTicks: 500 });
  assert.deepEqual(namespaces.initOf(101, noCandidates), { pid: 101, startTicks: 500 });
  assert.deepEqual(namespaces.initOf(201, noCandidates), { pid: 201, startTicks: 300 });
});

test("a process joined with setns: the init among the candidates, then remembered for its namespace", () => {
  const namespaces = new PidNamespaces(fixtureProcDir);
  assert.equal(namespaces.initOf(103, () => [103, 201, 104]), undefined, "no candidate is pid 1 of 103's namespace");
  assert.deepEqual(namespaces.initOf(103, () => [201, 104, 101]), { pid: 101, startTicks: 500 });
  assert.deepEqual(namespaces.initOf(103, () => []), { pid: 101, startTicks: 500 }, "remembered");
});

test("the host's namespace, a gone process and the fuse-native backend's pid 0 have no container init", () => {
  const namespaces = new PidNamespaces(fixtureProcDir);
  assert.equal(namespaces.initOf(301, () => [101]), undefined);
  assert.equal(namespaces.initOf(105, () => [101]), undefined);
  assert.equal(namespaces.initOf(0, () => [101]), undefined);
});

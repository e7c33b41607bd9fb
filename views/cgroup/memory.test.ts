import { test } from "node:test";
import assert from "node:assert/strict";
import { readMemorySnapshot } from "./memory.ts";
import { v1FixtureLayout, v2FixtureLayout } from "./testdata/layout.ts";

const MiB = 1024 * 1024;

test("v1: limit, usage, hierarchical stat keys under v2 names, swap from memsw", () => {
  const memory = readMemorySnapshot(v1FixtureLayout(), "/limited");
  assert.equal(memory.limit, 50 * MiB);
  assert.equal(memory.usage, 20 * MiB);
  assert.equal(memory.stat.get("file"), 8 * MiB);
  assert.equal(memory.stat.get("anon"), 12 * MiB);
  assert.equal(memory.stat.get("active_file"), 5 * MiB);
  assert.equal(memory.stat.get("file_mapped"), 3 * MiB);
  assert.equal(memory.stat.has("hierarchical_memory_limit"), false, "only total_* keys are taken");
  assert.deepEqual(memory.swap, { limit: 50 * MiB, usage: 4 * MiB });
});

test("v1: a limit set only on an ancestor applies", () => {
  const memory = readMemorySnapshot(v1FixtureLayout(), "/parent/child");
  assert.equal(memory.limit, 64 * MiB);
  assert.deepEqual(memory.swap, { limit: Infinity, usage: 0 });
});

test("v1 without memory.stat's hierarchical limits: the limit files of every ancestor are read", () => {
  const memory = readMemorySnapshot(v1FixtureLayout(), "/parent/statless");
  assert.equal(memory.limit, 64 * MiB);
  assert.equal(memory.stat.size, 0);
  assert.deepEqual(memory.swap, { limit: Infinity, usage: 0 });
});

test("v1: no limit anywhere is Infinity", () => {
  assert.equal(readMemorySnapshot(v1FixtureLayout(), "/").limit, Infinity);
});

test("v1: without memsw files swap is not accounted; swappiness 0 means no swap", () => {
  assert.equal(readMemorySnapshot(v1FixtureLayout(), "/noswapaccount").swap, undefined);
  assert.deepEqual(readMemorySnapshot(v1FixtureLayout(), "/swappiness0").swap, { limit: 0, usage: 0 });
});

test("v1: memsw usage below memory usage does not underflow swap usage", () => {
  const memory = readMemorySnapshot(v1FixtureLayout(), "/overlimit");
  assert.deepEqual(memory.swap, { limit: 0, usage: 10 * MiB });
  assert.equal(memory.stat.size, 0, "missing memory.stat is an empty stat");
});

test("v2: memory.max over ancestors, stat as is, swap.max and swap.current", () => {
  const memory = readMemorySnapshot(v2FixtureLayout(), "/pod/ctr");
  assert.equal(memory.limit, 100 * MiB);
  assert.equal(memory.usage, 40 * MiB);
  assert.equal(memory.stat.get("slab_reclaimable"), 1 * MiB);
  assert.deepEqual(memory.swap, { limit: Infinity, usage: 0 });
  assert.deepEqual(readMemorySnapshot(v2FixtureLayout(), "/limited").swap, { limit: 10 * MiB, usage: 20 * MiB });
  assert.equal(readMemorySnapshot(v2FixtureLayout(), "/noswap").swap, undefined);
});

test("a cgroup that does not exist throws ENOENT", () => {
  assert.throws(() => readMemorySnapshot(v2FixtureLayout(), "/gone"), { code: "ENOENT" });
  assert.throws(() => readMemorySnapshot(v1FixtureLayout(), "/gone"), { code: "ENOENT" });
});

test("a host without any memory hierarchy is a clear error", () => {
  assert.throws(() => readMemorySnapshot({ v1: new Map() }, "/a"), /no memory cgroup hierarchy holds this cgroup/);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { FsError, errno } from "../node.ts";
import { NodeTable, createNodeTableMemory } from "./node-table.ts";

test("one id per (parent, name), counted per lookup", () => {
  const table = new NodeTable(createNodeTableMemory(16));
  const first = table.lookup(1, "containers");
  assert.equal(first.created, true);
  assert.deepEqual(table.lookup(1, "containers"), { ...first, created: false }, "the same id, which the kernel holds already");
  assert.notEqual(table.lookup(1, "other").nodeId, first.nodeId);
  const nested = table.lookup(first.nodeId, "containers");
  assert.notEqual(nested.nodeId, first.nodeId, "same name under another parent is another node");
  assert.deepEqual(table.path(nested.nodeId)?.names, ["containers", "containers"]);
  assert.deepEqual(table.path(1)?.names, []);
  assert.equal(table.parentOf(nested.nodeId), first.nodeId);
});

test("an id lives until every lookup is forgotten", () => {
  const table = new NodeTable(createNodeTableMemory(16));
  const { nodeId } = table.lookup(1, "a");
  table.lookup(1, "a");
  table.forget(nodeId, 1);
  assert.deepEqual(table.path(nodeId)?.names, ["a"]);
  table.forget(nodeId, 1);
  assert.equal(table.path(nodeId), undefined);
  assert.equal(table.generationOf(nodeId), undefined);
  assert.equal(table.liveCount, 1);
  assert.equal(table.lookup(1, "a").created, true, "looked up again once forgotten: new to the kernel");
});

test("a parent outlives its forgotten lookups while it has live children", () => {
  const table = new NodeTable(createNodeTableMemory(16));
  const dir = table.lookup(1, "dir").nodeId;
  const file = table.lookup(dir, "file").nodeId;
  table.forget(dir, 1);
  assert.deepEqual(table.path(file)?.names, ["dir", "file"]);
  table.forget(file, 1);
  assert.equal(table.path(dir), undefined, "freed together with its last child");
  assert.equal(table.liveCount, 1);
});

test("thousands of names coming and going reuse the same slots", () => {
  const table = new NodeTable(createNodeTableMemory(64));
  const seen = new Set<number>();
  for (let round = 0; round < 5000; round++) {
    const dir = table.lookup(1, `container-${round}`);
    const file = table.lookup(dir.nodeId, "meminfo");
    seen.add(dir.nodeId).add(file.nodeId);
    table.forget(file.nodeId, 1);
    table.forget(dir.nodeId, 1);
  }
  assert.equal(table.liveCount, 1);
  assert.ok(seen.size <= 3, `slots used: ${seen.size}`);
});

test("a reused id gets a new generation", () => {
  const table = new NodeTable(createNodeTableMemory(4));
  const first = table.lookup(1, "a");
  table.forget(first.nodeId, 1);
  const second = table.lookup(1, "b");
  assert.equal(second.nodeId, first.nodeId);
  assert.ok(second.generation > first.generation);
  assert.deepEqual(table.path(second.nodeId), { names: ["b"], generation: second.generation });
});

test("a full table answers ENFILE; root and unknown ids are never freed or found", () => {
  const table = new NodeTable(createNodeTableMemory(4));
  table.lookup(1, "a");
  table.lookup(1, "b");
  assert.throws(() => table.lookup(1, "c"), (err: unknown) => err instanceof FsError && err.errno === errno.ENFILE);
  table.forget(1, 100);
  assert.deepEqual(table.path(1)?.names, []);
  table.forget(3000, 1);
  assert.equal(table.path(3000), undefined);
  assert.throws(() => table.lookup(77, "x"), (err: unknown) => err instanceof FsError && err.errno === errno.ENOENT);
});

test("names: UTF-8 round trip, longer than 255 bytes refused", () => {
  const table = new NodeTable(createNodeTableMemory(8));
  const { nodeId } = table.lookup(1, "größe-✓");
  assert.deepEqual(table.path(nodeId)?.names, ["größe-✓"]);
  assert.throws(() => table.lookup(1, "x".repeat(256)), (err: unknown) => err instanceof FsError && err.errno === errno.ENAMETOOLONG);
});

test("hash chains survive removals at their head, middle and tail", () => {
  // 60 names in 64 buckets: many chains hold several entries.
  const table = new NodeTable(createNodeTableMemory(64));
  const names = Array.from({ length: 60 }, (_, i) => `n${i}`);
  const ids = names.map((name) => table.lookup(1, name).nodeId);
  names.forEach((_, i) => i % 2 === 1 && table.forget(ids[i], 1));
  names.forEach((name, i) => {
    if (i % 2 === 0) {
      assert.equal(table.lookup(1, name).nodeId, ids[i], name);
      assert.deepEqual(table.path(ids[i])?.names, [name]);
    }
  });
  assert.equal(table.liveCount, 1 + 30);
});

test("views built on the same memory see one table", () => {
  const memory = createNodeTableMemory(16);
  const one = new NodeTable(memory);
  const other = new NodeTable(memory);
  const { nodeId } = one.lookup(1, "shared");
  assert.deepEqual(other.path(nodeId)?.names, ["shared"]);
  assert.equal(other.lookup(1, "shared").nodeId, nodeId);
});

test("capacity is validated", () => {
  assert.throws(() => createNodeTableMemory(1), /capacity/);
  assert.throws(() => createNodeTableMemory(2.5), /capacity/);
});

test("find names a held id without counting a lookup; children lists a parent's held names", () => {
  const table = new NodeTable(createNodeTableMemory(16));
  const ref = (parentId: number, name: string) => {
    const { nodeId, generation } = table.lookup(parentId, name);
    return { nodeId, generation };
  };
  const containers = ref(1, "containers");
  const a = ref(containers.nodeId, "a");
  const b = ref(containers.nodeId, "b");
  table.lookup(a.nodeId, "proc");
  assert.deepEqual(table.find(1, "containers"), containers);
  assert.deepEqual(table.find(containers.nodeId, "a"), a);
  assert.equal(table.find(containers.nodeId, "c"), undefined);
  assert.deepEqual(
    table.children(containers.nodeId).sort((x, y) => x.name.localeCompare(y.name)),
    [{ ...a, name: "a" }, { ...b, name: "b" }],
  );
  assert.deepEqual(table.children(b.nodeId), []);
  table.forget(b.nodeId, 1);
  assert.equal(table.find(containers.nodeId, "b"), undefined, "find counted nothing: one forget frees it");
  assert.deepEqual(table.children(containers.nodeId).map((child) => child.name), ["a"]);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { locateCgroupChain, parseCount, parseFlatKeyed, parseLimit } from "./files.ts";

test("limits: 'max' and v1's page-counter maximum are no limit", () => {
  assert.equal(parseLimit("max\n"), Infinity);
  assert.equal(parseLimit("9223372036854771712\n"), Infinity);
  assert.equal(parseLimit("52428800\n"), 52428800);
});

test("counters must be plain non-negative integers", () => {
  assert.equal(parseCount("42\n"), 42);
  assert.throws(() => parseCount("-1"), /not a cgroup counter/);
  assert.throws(() => parseCount(""), /not a cgroup counter/);
});

test("flat keyed files skip malformed lines", () => {
  const values = parseFlatKeyed("anon 10\nbogus\nfile 20\n\nweird -3\n");
  assert.deepEqual([...values], [["anon", 10], ["file", 20]]);
});

test("the chain runs from the cgroup to the hierarchy root", () => {
  const layout = { v1: new Map([["memory", "/sys/fs/cgroup/memory"]]), unified: "/sys/fs/cgroup/unified" };
  assert.deepEqual(locateCgroupChain(layout, "memory", "/a/b"), {
    version: 1,
    chain: ["/sys/fs/cgroup/memory/a/b", "/sys/fs/cgroup/memory/a", "/sys/fs/cgroup/memory"],
  });
  assert.deepEqual(locateCgroupChain(layout, "cpu", "/a"), {
    version: 2,
    chain: ["/sys/fs/cgroup/unified/a", "/sys/fs/cgroup/unified"],
  });
  assert.equal(locateCgroupChain({ v1: new Map() }, "memory", "/a"), undefined);
});

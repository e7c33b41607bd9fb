import { test } from "node:test";
import assert from "node:assert/strict";
import { parseBlkioFile, parseIoStat, readIoSnapshot } from "./io.ts";
import { v1FixtureLayout, v2FixtureLayout } from "./testdata/layout.ts";

test("v1: ops and bytes from the throttle files, merges and times (ns → ms) from the scheduler's", () => {
  const io = readIoSnapshot(v1FixtureLayout(), "/limited");
  assert.deepEqual(io.get("254:0"), {
    readOps: 100,
    writeOps: 50,
    readBytes: 409600,
    writeBytes: 1048576,
    discardOps: 2,
    discardBytes: 4096,
    readMerged: 3,
    writeMerged: 4,
    readMs: 8,
    writeMs: 11,
  });
  assert.equal(io.get("253:0")?.readOps, 0);
});

test("v2: io.stat", () => {
  const io = readIoSnapshot(v2FixtureLayout(), "/pod/ctr");
  assert.equal(io.get("254:0")?.readBytes, 1048576);
  assert.equal(io.get("254:0")?.writeOps, 20);
  assert.equal(io.get("254:0")?.readMs, 0);
});

test("a live cgroup without I/O files has no devices; a gone one throws ENOENT", () => {
  assert.equal(readIoSnapshot(v1FixtureLayout(), "/quiet").size, 0);
  assert.equal(readIoSnapshot(v2FixtureLayout(), "/pod").size, 0);
  assert.throws(() => readIoSnapshot(v1FixtureLayout(), "/gone"), { code: "ENOENT" });
  assert.throws(() => readIoSnapshot(v2FixtureLayout(), "/gone"), { code: "ENOENT" });
});

test("malformed lines are skipped", () => {
  assert.deepEqual([...parseBlkioFile("Total 5\n8:0 Read 1\nbad\n")], [["8:0", new Map([["Read", 1]])]]);
  assert.deepEqual([...parseIoStat("garbage\n8:0 rios=x wios=2\n")].map(([device, io]) => [device, io.readOps, io.writeOps]), [["8:0", 0, 2]]);
});

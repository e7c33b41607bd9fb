import { test } from "node:test";
import assert from "node:assert/strict";
import { readIoSnapshot } from "../cgroup/io.ts";
import { v1FixtureLayout, v2FixtureLayout } from "../cgroup/testdata/layout.ts";
import { HostFiles } from "../host/host-files.ts";
import { fixtureProcDir } from "../host/testdata/paths.ts";
import { renderDiskstats } from "./diskstats.ts";

const disks = new HostFiles({ procDir: fixtureProcDir }).diskstats();

const zeros = " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
const otherDevices = ["   7       0 loop0", " 254       1 vda1", " 253       0 zram0"];

test("v1: every host device in host order, the cgroup's counters in sectors and ms where it has some, else 0", () => {
  assert.equal(
    renderDiskstats(readIoSnapshot(v1FixtureLayout(), "/limited"), disks),
    otherDevices[0] + zeros + " 254       0 vda 100 3 800 8 50 4 2048 11 0 19 19 2 0 8 0 0 0\n" + otherDevices[1] + zeros + otherDevices[2] + zeros,
  );
});

test("v2: io.stat bytes and ops; the other devices at 0", () => {
  assert.equal(
    renderDiskstats(readIoSnapshot(v2FixtureLayout(), "/pod/ctr"), disks),
    otherDevices[0] + zeros + " 254       0 vda 10 0 2048 0 20 0 4096 0 0 0 0 0 0 0 0 0 0\n" + otherDevices[1] + zeros + otherDevices[2] + zeros,
  );
});

test("as many columns as the host kernel prints", () => {
  const oldKernel = [{ major: 8, minor: 0, name: "sda", columns: 11 }];
  const io = new Map([["8:0", { readOps: 1, writeOps: 2, readBytes: 1024, writeBytes: 0, discardOps: 5, discardBytes: 0, readMerged: 0, writeMerged: 0, readMs: 0, writeMs: 0 }]]);
  assert.equal(renderDiskstats(io, oldKernel), "   8       0 sda 1 0 2 0 2 0 0 0 0 0 0\n");
});

test("a cgroup without counters (v1 blkio with no I/O, or none counted): the host's devices at 0, never an empty file nor the host's counters", () => {
  for (const io of [new Map(), readIoSnapshot(v1FixtureLayout(), "/quiet")]) {
    const text = renderDiskstats(io, disks);
    assert.equal(text, otherDevices[0] + zeros + " 254       0 vda" + zeros + otherDevices[1] + zeros + otherDevices[2] + zeros);
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkFuseLiveness,
  clearFusePidFile,
  clearFuseStatus,
  fusePidFile,
  parseProcStatStartTime,
  processStartTime,
  procviewMountpoints,
  readFuseStatus,
  reusingAnswers,
  statfsAnswers,
  writeFusePidFile,
  writeFuseStatus,
  type LivenessProbe,
} from "./fuse-status.ts";

const mountinfo = `\
25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
90 25 0:60 / /var/lib/procview rw,nosuid,nodev,relatime - fuse.procview procview ro,user_id=0,group_id=0,allow_other
91 25 0:61 / /var/lib/lxcfs rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw
92 25 0:62 / /tmp/with\\040space rw - fuse.procview procview ro
`;

test("procview mounts are found by fs type, escapes undone", () => {
  assert.deepEqual(procviewMountpoints(mountinfo), ["/var/lib/procview", "/tmp/with space"]);
});

test("liveness needs status, matching mountpoint, the same process at the pid, the mount, and an answer", async () => {
  const status = { pid: 42, mountpoint: "/var/lib/procview", startedAt: 1, pidStartTime: 5000 };
  const probe = (over: Partial<LivenessProbe>): LivenessProbe => ({
    readStatus: () => status,
    startTimeOf: () => 5000,
    deviceOf: () => assert.fail("a status without a device is checked against the mount table"),
    mountinfo: () => mountinfo,
    answers: async () => undefined,
    ...over,
  });
  assert.deepEqual(await checkFuseLiveness("/var/lib/procview", probe({})), { live: true, status });
  const reasonOf = async (mountpoint: string, over: Partial<LivenessProbe>) => {
    const liveness = await checkFuseLiveness(mountpoint, probe(over));
    return liveness.live ? "live" : liveness.reason;
  };
  assert.match(await reasonOf("/var/lib/procview", { readStatus: () => undefined }), /no FUSE server status/);
  assert.match(await reasonOf("/elsewhere", {}), /serves \/var\/lib\/procview/);
  assert.match(await reasonOf("/var/lib/procview", { startTimeOf: () => undefined }), /pid 42 is gone/);
  assert.match(await reasonOf("/var/lib/procview", { startTimeOf: () => 7000 }), /pid 42 is gone: that pid now belongs to a process started later/);
  assert.match(await reasonOf("/var/lib/procview", { mountinfo: () => "" }), /no fuse.procview mount/);
  assert.match(await reasonOf("/var/lib/procview", { answers: async () => "statfs took longer than 1000 ms" }), /pid 42 does not answer: statfs took longer/);
  // A status file of an older server has no start time: the pid, the mount and the answer decide.
  const { pidStartTime: _, ...older } = status;
  assert.equal(await reasonOf("/var/lib/procview", { readStatus: () => older, startTimeOf: () => 9 }), "live");

  // A status naming its mount's device: that device at the mountpoint decides, the mount table is not read.
  const withDevice = { ...status, device: "0:68" };
  const noMountTable = () => assert.fail("the mount table was read");
  assert.equal(await reasonOf("/var/lib/procview", { readStatus: () => withDevice, deviceOf: () => "0:68", mountinfo: noMountTable }), "live");
  assert.match(
    await reasonOf("/var/lib/procview", { readStatus: () => withDevice, deviceOf: () => "254:0", mountinfo: noMountTable }),
    /the mount at \/var\/lib\/procview \(device 254:0\) is not the one FUSE server pid 42 serves \(device 0:68\)/,
  );
  // Where the device cannot be told (no FFI), the mount table still decides.
  assert.equal(await reasonOf("/var/lib/procview", { readStatus: () => withDevice, deviceOf: () => undefined }), "live");
  assert.match(await reasonOf("/var/lib/procview", { readStatus: () => withDevice, deviceOf: () => undefined, mountinfo: () => "" }), /no fuse.procview mount/);
});

test("the start time is field 22 of /proc/<pid>/stat, even with spaces and parentheses in the command name", () => {
  const fields = (comm: string) => `1234 (${comm}) S 1 1234 1234 0 -1 4194560 100 0 0 0 3 1 0 0 20 0 1 0 98765 1000 200 18446744073709551615`;
  assert.equal(parseProcStatStartTime(fields("node")), 98765);
  assert.equal(parseProcStatStartTime(fields("a) b (c")), 98765);
  assert.equal(parseProcStatStartTime("garbage"), undefined);
  assert.equal(processStartTime(process.pid), parseProcStatStartTime(readFileSync("/proc/self/stat", "utf8")));
  assert.equal(processStartTime(0), undefined);
});

test("statfsAnswers: a directory answers, a missing path says why", async () => {
  assert.equal(await statfsAnswers(tmpdir()), undefined);
  assert.match(String(await statfsAnswers("/nonexistent-procview-path")), /failed/);
});

test("the mount's answer is reused for its time, a failure is probed again, concurrent calls share a probe", async () => {
  let clock = 0;
  let probes = 0;
  let silence: string | undefined = "statfs failed: Transport endpoint is not connected";
  const answers = reusingAnswers(async () => (probes++, silence), { answeredMs: 1000, now: () => clock });
  assert.equal(await answers("/m"), silence);
  assert.equal(await answers("/m"), silence);
  assert.equal(probes, 2);
  silence = undefined;
  assert.deepEqual(await Promise.all([answers("/m"), answers("/m"), answers("/m")]), [undefined, undefined, undefined]);
  assert.equal(probes, 3);
  clock = 999;
  silence = "gone";
  assert.equal(await answers("/m"), undefined);
  assert.equal(await answers("/other"), "gone", "another mountpoint is probed for itself");
  clock = 1000;
  assert.equal(await answers("/m"), "gone");
  assert.equal(probes, 5);
});

test("status file round trip; clearing leaves a successor's file alone", () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-status-"));
  try {
    writeFuseStatus(dir, { pid: 7, mountpoint: "/m", startedAt: 3, pidStartTime: 11, device: "0:68" });
    assert.deepEqual(readFuseStatus(dir), { pid: 7, mountpoint: "/m", startedAt: 3, pidStartTime: 11, device: "0:68" });
    writeFileSync(join(dir, "fuse.json"), JSON.stringify({ pid: 7, mountpoint: "/m", startedAt: 3, device: "../0" }));
    assert.equal(readFuseStatus(dir), undefined, "a device that is not major:minor");
    assert.equal(statSync(join(dir, "fuse.json")).mode & 0o777, 0o600);
    writeFuseStatus(dir, { pid: process.pid, mountpoint: "/m", startedAt: 3 });
    assert.equal(readFuseStatus(dir)?.pidStartTime, processStartTime(process.pid));
    writeFuseStatus(dir, { pid: 7, mountpoint: "/m", startedAt: 3 });
    clearFuseStatus(dir, 8);
    assert.ok(readFuseStatus(dir));
    clearFuseStatus(dir, 7);
    assert.equal(readFuseStatus(dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the pid file holds the serving pid alone; clearing leaves a successor's pid alone", () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-status-"));
  try {
    writeFusePidFile(dir, 7);
    assert.equal(readFileSync(fusePidFile(dir), "utf8"), "7\n");
    writeFusePidFile(dir, 9);
    clearFusePidFile(dir, 7);
    assert.equal(readFileSync(fusePidFile(dir), "utf8"), "9\n");
    clearFusePidFile(dir, 9);
    assert.equal(existsSync(fusePidFile(dir)), false);
    clearFusePidFile(dir, 9);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

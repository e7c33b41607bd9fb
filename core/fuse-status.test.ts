import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkFuseLiveness,
  clearFusePidFile,
  clearFuseStatus,
  fusePidFile,
  procviewMountpoints,
  readFuseStatus,
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

test("liveness needs status, matching mountpoint, a live pid and the mount", () => {
  const status = { pid: 42, mountpoint: "/var/lib/procview", startedAt: 1 };
  const probe = (over: Partial<LivenessProbe>): LivenessProbe => ({
    readStatus: () => status,
    isAlive: () => true,
    mountinfo: () => mountinfo,
    ...over,
  });
  assert.deepEqual(checkFuseLiveness("/var/lib/procview", probe({})), { live: true, status });
  const reasonOf = (mountpoint: string, over: Partial<LivenessProbe>) => {
    const liveness = checkFuseLiveness(mountpoint, probe(over));
    return liveness.live ? "live" : liveness.reason;
  };
  assert.match(reasonOf("/var/lib/procview", { readStatus: () => undefined }), /no FUSE server status/);
  assert.match(reasonOf("/elsewhere", {}), /serves \/var\/lib\/procview/);
  assert.match(reasonOf("/var/lib/procview", { isAlive: () => false }), /pid 42 is gone/);
  assert.match(reasonOf("/var/lib/procview", { mountinfo: () => "" }), /no fuse.procview mount/);
});

test("status file round trip; clearing leaves a successor's file alone", () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-status-"));
  try {
    writeFuseStatus(dir, { pid: 7, mountpoint: "/m", startedAt: 3 });
    assert.deepEqual(readFuseStatus(dir), { pid: 7, mountpoint: "/m", startedAt: 3 });
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

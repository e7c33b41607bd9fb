import { test } from "node:test";
import assert from "node:assert/strict";
import { mountPointsOfType, parseMountinfo, unescapeMountinfo } from "./mountinfo.ts";

const sample = `\
25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
90 25 0:60 / /var/lib/procview rw,nosuid,nodev,relatime shared:5 master:2 - fuse.procview procview ro,user_id=0,group_id=0,allow_other
92 25 0:62 / /tmp/with\\040space rw - fuse.procview procview ro
412 390 0:60 /containers/abc/proc/meminfo /proc/meminfo ro,nosuid,nodev,noexec - fuse.procview procview ro
not a mountinfo line
`;

test("entries: device, root, mount point, type and superblock options, whatever the optional fields", () => {
  assert.deepEqual(parseMountinfo(sample), [
    { device: "254:0", root: "/", mountPoint: "/", fsType: "ext4", superOptions: "rw" },
    { device: "0:27", root: "/", mountPoint: "/sys/fs/cgroup/cpu", fsType: "cgroup", superOptions: "rw,cpu" },
    { device: "0:60", root: "/", mountPoint: "/var/lib/procview", fsType: "fuse.procview", superOptions: "ro,user_id=0,group_id=0,allow_other" },
    { device: "0:62", root: "/", mountPoint: "/tmp/with space", fsType: "fuse.procview", superOptions: "ro" },
    { device: "0:60", root: "/containers/abc/proc/meminfo", mountPoint: "/proc/meminfo", fsType: "fuse.procview", superOptions: "ro" },
  ]);
});

test("mount points of one type", () => {
  assert.deepEqual(mountPointsOfType(sample, "fuse.procview"), ["/var/lib/procview", "/tmp/with space", "/proc/meminfo"]);
  assert.deepEqual(mountPointsOfType(sample, "fuse.lxcfs"), []);
});

test("octal escapes are undone", () => {
  assert.equal(unescapeMountinfo("/a\\040b\\011c\\134d"), "/a b\tc\\d");
});

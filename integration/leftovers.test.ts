import { test } from "node:test";
import assert from "node:assert/strict";
import { cgroupHierarchyRoots, mountPointsBelow } from "./leftovers.ts";

const hybridMountinfo = [
  "22 27 0:21 / /proc rw,relatime - proc proc rw",
  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  "42 27 254:0 /tmp/d/data /tmp/d/data rw,relatime shared:1 - ext4 /dev/vda rw",
  "47 42 0:39 / /tmp/d/data/overlay2/abc/merged rw,relatime shared:2 - overlay overlay rw,lowerdir=x",
  "93 27 0:4 net:[4026532181] /tmp/d/exec/netns/ac37 rw - nsfs nsfs rw",
  "94 27 0:40 / /tmp/d2 rw - tmpfs tmpfs rw",
  "95 27 0:41 / /tmp/d/with\\040space rw - tmpfs tmpfs rw",
].join("\n");

test("mountPointsBelow lists mounts inside a directory deepest first, not its siblings", () => {
  assert.deepEqual(mountPointsBelow(hybridMountinfo, "/tmp/d/"), [
    "/tmp/d/data/overlay2/abc/merged",
    "/tmp/d/exec/netns/ac37",
    "/tmp/d/with space",
    "/tmp/d/data",
  ]);
  assert.deepEqual(mountPointsBelow(hybridMountinfo, "/nowhere"), []);
});

test("cgroupHierarchyRoots includes named v1 hierarchies and cgroup2", () => {
  assert.deepEqual(cgroupHierarchyRoots(hybridMountinfo), [
    "/sys/fs/cgroup/cpu",
    "/sys/fs/cgroup/memory",
    "/sys/fs/cgroup/systemd",
    "/sys/fs/cgroup/unified",
  ]);
});

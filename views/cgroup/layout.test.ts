import { test } from "node:test";
import assert from "node:assert/strict";
import { locateController, parseCgroupLayout } from "./layout.ts";

const hybridMountinfo = `\
25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
36 30 0:32 / /sys/fs/cgroup/my\\040dir rw,relatime - cgroup cgroup rw,cpuset
`;

test("hybrid layout: v1 controllers win, unified is recorded", () => {
  const layout = parseCgroupLayout(hybridMountinfo);
  assert.equal(layout.v1.get("memory"), "/sys/fs/cgroup/memory");
  assert.equal(layout.v1.get("cpuset"), "/sys/fs/cgroup/my dir");
  assert.equal(layout.v1.has("name=systemd"), false);
  assert.equal(layout.unified, "/sys/fs/cgroup/unified");
  assert.deepEqual(locateController(layout, "memory", "/k8s.io/x"), { version: 1, dir: "/sys/fs/cgroup/memory/k8s.io/x" });
  assert.deepEqual(locateController(layout, "io", "/k8s.io/x"), { version: 2, dir: "/sys/fs/cgroup/unified/k8s.io/x" });
});

test("pure v2 layout", () => {
  const layout = parseCgroupLayout("40 25 0:33 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  assert.deepEqual(locateController(layout, "memory", "/a"), { version: 2, dir: "/sys/fs/cgroup/a" });
  assert.equal(locateController(parseCgroupLayout(""), "memory", "/a"), undefined);
});

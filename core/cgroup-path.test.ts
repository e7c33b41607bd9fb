import { test } from "node:test";
import assert from "node:assert/strict";
import { cgroupRelativePath, expandSystemdSlice, parseProcCgroup } from "./cgroup-path.ts";

test("cgroupfs paths are normalised to an absolute relative path", () => {
  assert.equal(cgroupRelativePath("/k8s.io/abc"), "/k8s.io/abc");
  assert.equal(cgroupRelativePath("kubepods/burstable/pod1/abc/"), "/kubepods/burstable/pod1/abc");
  assert.equal(cgroupRelativePath("//procview-test//abc"), "/procview-test/abc");
});

test("cgroupfs paths may not climb out of the hierarchy", () => {
  assert.throws(() => cgroupRelativePath("/k8s.io/../../etc"), /escapes/);
});

test("systemd-driver paths expand slices and name the scope", () => {
  assert.equal(
    cgroupRelativePath("kubepods-burstable-pod6b2d.slice:cri-containerd:0123abcd"),
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b2d.slice/cri-containerd-0123abcd.scope",
  );
  assert.equal(cgroupRelativePath("system.slice:docker:deadbeef"), "/system.slice/docker-deadbeef.scope");
  assert.equal(cgroupRelativePath(":cri-containerd:abc"), "/cri-containerd-abc.scope");
});

test("systemd slice expansion", () => {
  assert.equal(expandSystemdSlice("-.slice"), "/");
  assert.equal(expandSystemdSlice("kubepods.slice"), "/kubepods.slice");
  assert.equal(expandSystemdSlice("a-b-c.slice"), "/a.slice/a-b.slice/a-b-c.slice");
  assert.throws(() => expandSystemdSlice("a--b.slice"), /malformed/);
  assert.throws(() => expandSystemdSlice("nope.scope"), /not a systemd slice/);
});

test("/proc/<pid>/cgroup parsing", () => {
  const paths = parseProcCgroup("4:memory:/k8s.io/abc\n2:cpu,cpuacct:/k8s.io/abc\n1:name=systemd:/\n0::/k8s.io/abc\n");
  assert.equal(paths.get("memory"), "/k8s.io/abc");
  assert.equal(paths.get("cpuacct"), "/k8s.io/abc");
  assert.equal(paths.get(""), "/k8s.io/abc");
  assert.equal(paths.get("name=systemd"), "/");
});

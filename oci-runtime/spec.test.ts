import assert from "node:assert/strict";
import { test } from "node:test";
import { cgroupRelativePath } from "../core/cgroup-path.ts";
import { viewMounts } from "../core/views.ts";
import { effectiveCgroupsPath, engineIdentity, mountedTargets, parseSpec, specAnnotations, withMounts } from "./spec.ts";

const bundleConfig = {
  ociVersion: "1.0.2-dev",
  process: { args: ["sh"], cwd: "/" },
  root: { path: "rootfs" },
  mounts: [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "ro"] },
  ],
  annotations: { "procview.noderesource.dev": "enabled", "io.kubernetes.cri.container-name": "app" },
  linux: { cgroupsPath: "/default/c1", namespaces: [{ type: "mount" }] },
};

test("the view binds are appended after /proc and /sys, and nothing else changes", () => {
  const spec = parseSpec(JSON.stringify(bundleConfig));
  const binds = viewMounts("/var/lib/procview", "c1");
  const edited = withMounts(spec, binds);
  assert.deepEqual(edited.mounts, [...bundleConfig.mounts, ...binds]);
  assert.deepEqual({ ...edited, mounts: undefined }, { ...bundleConfig, mounts: undefined });
  assert.deepEqual(spec.mounts, bundleConfig.mounts, "the input is not modified");
  assert.deepEqual(withMounts(parseSpec("{}"), binds).mounts, binds, "a spec without mounts gets them");
  assert.deepEqual(binds[0], { destination: "/proc/meminfo", type: "bind", source: "/var/lib/procview/containers/c1/proc/meminfo", options: ["bind", "ro"] });
});

test("config.json that is not a spec is refused with the reason", () => {
  assert.throws(() => parseSpec("[]"), /not a JSON object/);
  assert.throws(() => parseSpec('{"mounts": {}}'), /mounts is not a list/);
  assert.throws(() => parseSpec('{"annotations": 3}'), /annotations is not an object/);
  assert.throws(() => parseSpec("{"), SyntaxError);
});

test("only string annotations count; the engine's names and the CRI sandbox are recognised", () => {
  assert.deepEqual(specAnnotations(parseSpec('{"annotations": {"a": "1", "b": 2}}')), { a: "1" });
  assert.deepEqual(engineIdentity({ "nerdctl/name": "web" }), { name: "web", sandbox: false });
  assert.deepEqual(
    engineIdentity({
      "io.kubernetes.cri.container-type": "container",
      "io.kubernetes.cri.container-name": "app",
      "io.kubernetes.cri.sandbox-name": "pod",
      "io.kubernetes.cri.sandbox-namespace": "ns",
      "io.kubernetes.cri.sandbox-uid": "u1",
    }),
    { name: "app", pod: { name: "pod", namespace: "ns", uid: "u1" }, sandbox: false },
  );
  assert.equal(engineIdentity({ "io.kubernetes.cri.container-type": "sandbox" }).sandbox, true);
});

test("cgroupsPath: cgroupfs and systemd forms, runc's systemd default, none under cgroupfs", () => {
  const withPath = (cgroupsPath: string) => parseSpec(JSON.stringify({ linux: { cgroupsPath } }));
  assert.equal(cgroupRelativePath(effectiveCgroupsPath(withPath("/default/c1"), "c1", false)!), "/default/c1");
  assert.equal(cgroupRelativePath(effectiveCgroupsPath(withPath("docker/c1"), "c1", false)!), "/docker/c1");
  assert.equal(
    cgroupRelativePath(effectiveCgroupsPath(withPath("system.slice:docker:c1"), "c1", true)!),
    "/system.slice/docker-c1.scope",
  );
  assert.equal(
    cgroupRelativePath(effectiveCgroupsPath(withPath("kubepods-besteffort-pod1.slice:cri-containerd:c1"), "c1", true)!),
    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-c1.scope",
  );
  assert.equal(effectiveCgroupsPath(parseSpec("{}"), "c1", true), "system.slice:runc:c1");
  assert.equal(cgroupRelativePath("system.slice:runc:c1"), "/system.slice/runc-c1.scope");
  assert.equal(effectiveCgroupsPath(parseSpec('{"linux": {}}'), "c1", false), undefined);
});

test("targets already mounted (the NRI plugin's binds, a user's) are found, trailing slashes aside", () => {
  const spec = parseSpec(JSON.stringify({ mounts: [{ destination: "/proc" }, { destination: "/proc/meminfo/" }] }));
  assert.deepEqual(mountedTargets(spec, ["/proc/meminfo", "/proc/cpuinfo"]), ["/proc/meminfo"]);
  assert.deepEqual(mountedTargets(parseSpec("{}"), ["/proc/meminfo"]), []);
});

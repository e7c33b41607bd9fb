import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { startContainerd, type Containerd } from "./containerd.ts";
import { connectCri, type CriClient } from "./cri.ts";
import { cgroupHierarchyRoots, isRunning, mountNamespaceMembers, mountPointsBelow, shimPids } from "./leftovers.ts";

// The real stack, nothing mocked: trixie's containerd 1.7 with NRI on, bookworm's runc,
// a busybox image built here, driven through the CRI as kubelet would drive it.

const memoryLimit = 52428800;

function mountinfo(pid: number | "self"): string {
  return readFileSync(`/proc/${pid}/mountinfo`, "utf8");
}

function cgroupProcs(dir: string): number[] {
  return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
}

describe("private containerd with NRI, driven through the CRI", () => {
  let containerd: Containerd;
  let cri: CriClient;
  let sharedDir: string;
  let containerId: string;
  let podId: string;

  before(async () => {
    sharedDir = await mkdtemp(join(tmpdir(), "procview-shared-"));
    containerd = await startContainerd({ sharedDirs: [sharedDir] });
    cri = connectCri(containerd.criAddress);
  });

  after(async () => {
    cri?.close();
    await containerd?.stop();
    await rm(sharedDir, { recursive: true, force: true });
  });

  test("containerd 1.7 answers on the CRI and listens for NRI plugins", async () => {
    const version = await cri.version();
    assert.equal(version.runtimeName, "containerd");
    assert.match(version.runtimeVersion, /^1\.7\./);
    assert.ok(statSync(containerd.nriSocket).isSocket(), `${containerd.nriSocket} is a socket`);
    // From the host namespace, as the NRI plugin will connect.
    const connection = createConnection(containerd.nriSocket);
    await once(connection, "connect");
    connection.destroy();
    assert.ok(!containerd.criAddress.startsWith("/run/") && !containerd.nriSocket.startsWith("/run/"));
    assert.deepEqual((await cri.listImages()).filter((tag) => tag.startsWith("localhost/procview/")).sort(), [
      containerd.images.busybox,
      containerd.images.pause,
    ]);
  });

  test("a 50 MiB busybox container sees the host's MemTotal and gets the limit in its cgroup", async () => {
    podId = await cri.runPod({ name: "smoke", namespace: "procview-test", cgroupParent: containerd.cgroupParent });
    containerId = await cri.createContainer(podId, {
      name: "busybox",
      image: containerd.images.busybox,
      command: ["sleep", "2147483647"],
      memoryLimitBytes: memoryLimit,
    });
    await cri.startContainer(containerId);

    const hostMemTotal = readFileSync("/proc/meminfo", "utf8").split("\n")[0];
    const exec = await cri.execSync(containerId, ["head", "-n", "1", "/proc/meminfo"], 10);
    assert.deepEqual(exec, { stdout: `${hostMemTotal}\n`, stderr: "", exitCode: 0 });

    const memoryCgroup = posix.join("/sys/fs/cgroup/memory", containerd.cgroupParent, containerId);
    assert.equal(readFileSync(join(memoryCgroup, "memory.limit_in_bytes"), "utf8").trim(), String(memoryLimit));
    assert.equal((await cri.containerStatus(containerId)).resources.memoryLimitBytes, memoryLimit);
  });

  test("a mount made below a shared dir after start reaches containerd's namespace", () => {
    const later = join(sharedDir, "later");
    execFileSync("mkdir", [later]);
    execFileSync("mount", ["-t", "tmpfs", "procview-later", later]);
    try {
      assert.ok(mountPointsBelow(mountinfo(containerd.pid), later).includes(later));
    } finally {
      execFileSync("umount", [later]);
    }
    assert.deepEqual(mountPointsBelow(mountinfo(containerd.pid), later), []);
  });

  test("restart() brings containerd back on the same state while the container keeps running", async () => {
    const memoryCgroup = posix.join("/sys/fs/cgroup/memory", containerd.cgroupParent, containerId);
    const processesBefore = cgroupProcs(memoryCgroup);
    const pidBefore = containerd.pid;
    assert.ok(processesBefore.length > 0);

    await containerd.restart();

    assert.notEqual(containerd.pid, pidBefore);
    assert.equal(isRunning(pidBefore), false);
    assert.deepEqual(cgroupProcs(memoryCgroup), processesBefore);
    assert.ok(processesBefore.every(isRunning));
    // The client made before the restart reconnects by itself.
    assert.equal((await cri.containerStatus(containerId)).state, "CONTAINER_RUNNING");
    const exec = await cri.execSync(containerId, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], 10);
    assert.equal(exec.stdout.trim(), String(memoryLimit));
  });

  test("stop() leaves no process, mount, cgroup or file behind", async () => {
    const memoryCgroup = posix.join("/sys/fs/cgroup/memory", containerd.cgroupParent, containerId);
    const containerProcesses = cgroupProcs(memoryCgroup);
    const shims = shimPids(containerd.criAddress);
    const containerdPid = containerd.pid;
    // Everything in containerd's mount namespace: holder, containerd, shims, not-yet-unshared runc.
    const namespaceMembers = mountNamespaceMembers(readlinkSync(`/proc/${containerdPid}/ns/mnt`));
    const cgroupDirs = cgroupHierarchyRoots(mountinfo("self")).map((root) => posix.join(root, containerd.cgroupParent));
    assert.ok(shims.length > 0, "the pod runs in a shim");
    assert.ok(cgroupDirs.filter(existsSync).length > 1, "the pod has cgroups in several hierarchies");
    assert.ok(mountPointsBelow(mountinfo("self"), sharedDir).includes(sharedDir), "the shared dir is bound");
    assert.ok(mountinfo(containerdPid).includes("overlay"), "container rootfs is mounted in containerd's namespace");

    await containerd.stop();
    await containerd.stop(); // idempotent, as after() relies on

    assert.ok(namespaceMembers.includes(containerdPid) && namespaceMembers.length >= 2 + shims.length);
    for (const pid of new Set([containerdPid, ...shims, ...containerProcesses, ...namespaceMembers])) {
      assert.equal(isRunning(pid), false, `pid ${pid} gone`);
    }
    assert.deepEqual(shimPids(containerd.criAddress), []);
    assert.deepEqual(mountPointsBelow(mountinfo("self"), sharedDir), []);
    assert.deepEqual(mountPointsBelow(mountinfo("self"), containerd.dir), []);
    assert.deepEqual(cgroupDirs.filter(existsSync), []);
    assert.equal(existsSync(containerd.dir), false);
  });
});

describe("stop() with a mount left below a shared dir", () => {
  test("reports what to unmount, keeps the bind, and a later stop() finishes the job", async () => {
    const sharedDir = await mkdtemp(join(tmpdir(), "procview-shared-"));
    const containerd = await startContainerd({ sharedDirs: [sharedDir] });
    const dir = containerd.dir;
    const mounted = join(sharedDir, "fuse-stand-in");
    try {
      await mkdir(mounted);
      execFileSync("mount", ["-t", "tmpfs", "procview-stand-in", mounted]);
      await assert.rejects(containerd.stop(), new RegExp(`${sharedDir} stays bound: unmount ${mounted} first`));
      assert.ok(mountPointsBelow(mountinfo("self"), sharedDir).includes(sharedDir));
      assert.ok(existsSync(dir), "the private folder stays until the job is done");
      execFileSync("umount", [mounted]);
      await containerd.stop();
      assert.deepEqual(mountPointsBelow(mountinfo("self"), sharedDir), []);
      assert.equal(existsSync(dir), false);
    } finally {
      if (mountPointsBelow(mountinfo("self"), mounted).length > 0) execFileSync("umount", [mounted]);
      await containerd.stop();
      await rm(sharedDir, { recursive: true, force: true });
    }
  });
});

describe("startContainerd failures", () => {
  test("a shared dir that does not exist fails start-up cleanly, naming it", async () => {
    const parent = await mkdtemp(join(tmpdir(), "procview-no-such-"));
    const missing = join(parent, "x");
    try {
      const error = await startContainerd({ sharedDirs: [missing] }).then(
        () => assert.fail("startContainerd accepted a missing shared dir"),
        (reason: unknown) => reason as Error,
      );
      assert.match(error.message, new RegExp(`containerd did not start: .*${missing}`, "s"));
      // The error quotes the log inside the instance's private folder, which is gone by now.
      const folder = /--- containerd log \((\/\S+)\/containerd\.log, tail\) ---/.exec(error.message)?.[1];
      assert.ok(folder !== undefined, `the error names the log: ${error.message}`);
      assert.equal(existsSync(folder), false, "its private folder is removed");
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});

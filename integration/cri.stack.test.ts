import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { startContainerd, type Containerd } from "./containerd.ts";
import { connectCri, type CriClient } from "./cri.ts";

// The client against the real containerd 1.7 (no stand-in): what each call asks for
// must show up in the container's cgroups and in what the runtime reports.

function cgroupValue(containerd: Containerd, controller: string, id: string, file: string): string {
  return readFileSync(join(posix.join("/sys/fs/cgroup", controller, containerd.cgroupParent, id), file), "utf8").trim();
}

describe("CRI client against containerd", () => {
  let containerd: Containerd;
  let cri: CriClient;
  let podId: string;
  let containerId: string;

  before(async () => {
    containerd = await startContainerd();
    cri = connectCri(containerd.criAddress);
    podId = await cri.runPod({
      name: "cri-client",
      namespace: "procview-test",
      uid: "cri-client-uid",
      cgroupParent: containerd.cgroupParent,
      annotations: { "procview.example/pod": "yes" },
    });
    containerId = await cri.createContainer(podId, {
      name: "limited",
      image: containerd.images.busybox,
      command: ["sleep", "2147483647"],
      env: { GREETING: "hello from CRI" },
      memoryLimitBytes: 64 * 1024 * 1024,
      cpusetCpus: "0",
      cpuQuota: 50_000,
      cpuPeriod: 100_000,
      annotations: { "procview.example/container": "limited" },
    });
    await cri.startContainer(containerId);
  });

  after(async () => {
    cri?.close();
    await containerd?.stop();
  });

  test("pods and containers are listed with their names and annotations", async () => {
    const pods = await cri.listPods();
    assert.deepEqual(
      pods.map((pod) => ({ ...pod, annotations: pod.annotations["procview.example/pod"] })),
      [{ id: podId, name: "cri-client", namespace: "procview-test", ready: true, annotations: "yes" }],
    );
    const containers = await cri.listContainers(podId);
    assert.equal(containers.length, 1);
    assert.equal(containers[0].id, containerId);
    assert.equal(containers[0].name, "limited");
    assert.equal(containers[0].state, "CONTAINER_RUNNING");
    assert.equal(containers[0].annotations["procview.example/container"], "limited");
  });

  test("memory, cpuset and CFS quota reach the container's v1 cgroups", () => {
    assert.equal(cgroupValue(containerd, "memory", containerId, "memory.limit_in_bytes"), String(64 * 1024 * 1024));
    assert.equal(cgroupValue(containerd, "cpuset", containerId, "cpuset.cpus"), "0");
    assert.equal(cgroupValue(containerd, "cpu", containerId, "cpu.cfs_quota_us"), "50000");
    assert.equal(cgroupValue(containerd, "cpu", containerId, "cpu.cfs_period_us"), "100000");
  });

  test("execSync returns stdout, stderr and the exit code; the environment is set; the pod shares the host network", async () => {
    assert.deepEqual(await cri.execSync(containerId, ["sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 3']), {
      stdout: "hello from CRI\n",
      stderr: "oops\n",
      exitCode: 3,
    });
    const hostInterfaces = readFileSync("/proc/net/dev", "utf8").split("\n").slice(2).map((line) => line.split(":")[0].trim()).filter(Boolean).sort();
    const exec = await cri.execSync(containerId, ["cat", "/proc/net/dev"]);
    const containerInterfaces = exec.stdout.split("\n").slice(2).map((line) => line.split(":")[0].trim()).filter(Boolean).sort();
    assert.deepEqual(containerInterfaces, hostInterfaces);
  });

  test("updateContainerResources changes what it names and keeps the rest", async () => {
    await cri.updateContainerResources(containerId, { memoryLimitBytes: 128 * 1024 * 1024, cpusetCpus: "0-1" });
    assert.equal(cgroupValue(containerd, "memory", containerId, "memory.limit_in_bytes"), String(128 * 1024 * 1024));
    assert.equal(cgroupValue(containerd, "cpuset", containerId, "cpuset.cpus"), "0-1");
    assert.equal(cgroupValue(containerd, "cpu", containerId, "cpu.cfs_quota_us"), "50000");
    const status = await cri.containerStatus(containerId);
    assert.equal(status.resources.memoryLimitBytes, 128 * 1024 * 1024);
    assert.equal(status.resources.cpusetCpus, "0-1");
  });

  test("invalid requests fail with a clear error and leave the runtime usable", async () => {
    await assert.rejects(cri.updateContainerResources(containerId, { memoryLimitBytes: -1 }), /memoryLimitBytes must be a non-negative integer, got -1/);
    await assert.rejects(cri.createContainer("no-such-pod", { name: "x", image: containerd.images.busybox }), /pod no-such-pod was not created by this client/);
    await assert.rejects(cri.createContainer(podId, { name: "x", image: "" }), /needs an image/);
    await assert.rejects(cri.execSync("no-such-container", ["true"]), /CRI ExecSync failed: .*no-such-container/);
    assert.equal((await cri.execSync(containerId, ["true"])).exitCode, 0);
  });

  test("stopContainer and removeContainer end the container; teardown removes the pod", async () => {
    await cri.stopContainer(containerId, 0);
    const status = await cri.containerStatus(containerId);
    assert.equal(status.state, "CONTAINER_EXITED");
    assert.equal(status.exitCode, 137, "timeout 0: killed by SIGKILL at once (128 + 9)");
    await cri.removeContainer(containerId);
    assert.deepEqual(await cri.listContainers(podId), []);
    await cri.teardown();
    assert.deepEqual(await cri.listPods(), []);
  });
});

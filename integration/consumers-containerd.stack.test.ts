/**
 * The consumer suite (integration/consumers.ts) through the path Kubernetes users take:
 * a private containerd 1.7 with NRI, procview's FUSE server and NRI plugin started
 * through the CLI, a pod made through the CRI with a container limited to 200 MiB,
 * cpuset 0 and a 0.5 CPU quota, its /proc bound by the plugin to `containers/<id>/…`.
 * The busybox image carries no procps, sysstat or Node: they, the host's shared libraries
 * and the suite's scripts come in as read-only hostPath mounts, and every program runs
 * through the CRI's ExecSync (`runc exec`: it joins the container's pid namespace from
 * outside, so its uptime origin is found among the container's processes).
 * Needs root, /dev/fuse and Debian's mirror.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { cgroupCpuSeconds, consumerLimits, consumerTests, provisionConsumerTools, writeConsumerScripts, type ConsumerContainer } from "./consumers.ts";
import { startProcviewStack, type ProcviewStack } from "./procview-stack.ts";

let stack: ProcviewStack | undefined;
let dir: string | undefined;
let container: ConsumerContainer | undefined;

before(async () => {
  const [tools, scriptsHome] = await Promise.all([provisionConsumerTools(), mkdtemp(join(tmpdir(), "procview-consumers-"))]);
  dir = scriptsHome;
  await writeConsumerScripts(join(dir, "scripts"));
  stack = await startProcviewStack();
  const { cri, containerd } = stack;
  const bins = { procps: "/opt/procps", sysstat: "/opt/sysstat", node: "/opt/node" };
  const libDir = "/opt/libproc2";
  const mounts: Record<string, string> = {
    // The host's libc and friends where the dynamic loader looks for them (merged /usr host),
    // and the terminal database top refuses to start without (ncurses-base, always installed).
    "/lib/x86_64-linux-gnu": "/usr/lib/x86_64-linux-gnu",
    "/lib64": "/usr/lib64",
    "/lib/terminfo": "/usr/lib/terminfo",
    [bins.procps]: tools.bins.procps,
    [bins.sysstat]: tools.bins.sysstat,
    [bins.node]: tools.bins.node,
    [libDir]: tools.libDir,
    "/opt/consumers": join(dir, "scripts"),
  };
  const pod = await cri.runPod({ name: "consumers", uid: "uid-consumers", namespace: "procview-test", cgroupParent: containerd.cgroupParent });
  // The container's first process (runc's init, exec'ing sleep at start) is forked at create.
  const startedAt = Date.now();
  const id = await cri.createContainer(pod, {
    name: "consumers",
    image: containerd.images.busybox,
    command: ["sleep", "3600"],
    memoryLimitBytes: consumerLimits.memoryBytes,
    cpusetCpus: consumerLimits.cpus,
    cpuQuota: consumerLimits.cpuQuotaUs,
    cpuPeriod: consumerLimits.cpuPeriodUs,
    mounts: Object.entries(mounts).map(([containerPath, hostPath]) => ({ containerPath, hostPath, readonly: true })),
  });
  await cri.startContainer(id);
  container = {
    bins,
    // containerd's cgroupfs driver puts the container at <cgroup parent>/<id> in every hierarchy.
    cpuSeconds: cgroupCpuSeconds(`${containerd.cgroupParent}/${id}`),
    scriptsDir: "/opt/consumers",
    // The image's /tmp: the container's writable layer, on the host's disk.
    scratchDir: "/tmp",
    startedAt: () => startedAt,
    async run(script, timeoutMs) {
      const result = await cri.execSync(id, ["sh", "-ec", `export LD_LIBRARY_PATH=${libDir}\n${script}`], Math.ceil(timeoutMs / 1000));
      if (result.exitCode !== 0) throw new Error(`consumer script exited ${result.exitCode}:\n${result.stderr}\n--- stdout ---\n${result.stdout}`);
      return result.stdout;
    },
  };
});

after(async () => {
  await stack?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("a CRI container with procview's views bound by the NRI plugin", () => {
  consumerTests(() => container!);
});

/**
 * The consumer suite (integration/consumers.ts) on procview's two layouts, each in a real
 * cgroup made on the host (200 MiB, cpuset 0, 0.5 CPU quota) with the views bound
 * read-only over /proc in a private mount namespace, as a runtime binds them:
 * - the LXCFS-compatible layout (`<mnt>/proc/…`, rendered for the reading process);
 * - the per-container layout (`<mnt>/containers/<id>/…`, from the cgroup in the
 *   container's record), in a private pid namespace too, so uptime counts from its init.
 * Needs root, /dev/fuse, util-linux `unshare` and Debian's mirror (procps, sysstat).
 */

import { spawn } from "node:child_process";
import { once } from "node:events";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLimitedCgroup, type LimitedCgroup } from "../bench/limited-cgroup.ts";
import { locateController, parseCgroupLayout } from "../views/cgroup/layout.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { viewFiles } from "../core/views.ts";
import { cgroupCpuSeconds, consumerLimits, consumerTests, provisionConsumerTools, writeConsumerScripts, type ConsumerContainer, type ConsumerTools } from "./consumers.ts";
import { removeCgroupTreesWhenIdle } from "./leftovers.ts";
import { startProcviewFuse, type ProcviewFuse } from "./procview-process.ts";

let fuse: ProcviewFuse | undefined;
let tools: ConsumerTools;
let dir: string;

before(async () => {
  [tools, dir] = await Promise.all([provisionConsumerTools(), mkdtemp(join(tmpdir(), "procview-consumers-"))]);
  await writeConsumerScripts(join(dir, "scripts"));
  fuse = await startProcviewFuse();
});

after(async () => {
  await fuse?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Layout {
  name: string;
  /** The folder whose proc/… and sys/… files are bound over the container's. */
  viewRoot(cgroup: LimitedCgroup): string;
  /** unshare's namespaces for the container. */
  namespaces: string[];
}

const layouts: Layout[] = [
  { name: "LXCFS-compatible layout, private mount namespace", viewRoot: () => fuse!.mountpoint, namespaces: ["--mount", "--propagation", "private"] },
  {
    name: "containers/<id> layout, private mount and pid namespaces",
    viewRoot: (cgroup) => {
      const id = `consumers-${process.pid}`;
      new ContainerRegistry(fuse!.stateDir).put({ id, cgroupPath: cgroup.relativePath, recordedAt: Date.now() });
      return join(fuse!.mountpoint, "containers", id);
    },
    namespaces: ["--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc"],
  },
];

for (const layout of layouts) {
  describe(layout.name, () => {
    let cgroup: LimitedCgroup | undefined;
    let container: ConsumerContainer | undefined;

    before(() => {
      cgroup = createLimitedCgroup("procview-consumers", consumerLimits);
      container = unsharedContainer(cgroup, layout.viewRoot(cgroup), layout.namespaces);
    });

    after(async () => {
      await cgroup?.remove();
    });

    consumerTests(() => container!);
  });
}

describe("a container limited in memory only (its cpu cgroup is the host's root), LXCFS-compatible layout", () => {
  const layout = parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
  const relativePath = `/procview-consumers-memory-${process.pid}`;
  const memoryDir = locateController(layout, "memory", relativePath)!.dir;

  before(() => {
    mkdirSync(memoryDir);
    const limitFile = existsSync(join(memoryDir, "memory.limit_in_bytes")) ? "memory.limit_in_bytes" : "memory.max";
    writeFileSync(join(memoryDir, limitFile), String(consumerLimits.memoryBytes));
  });

  after(async () => {
    await removeCgroupTreesWhenIdle([memoryDir]);
  });

  test("Node's os.uptime() and /proc/uptime count from the container's start, not the host's boot", async () => {
    const cgroup = { relativePath, addProcess: (pid: number) => writeFileSync(join(memoryDir, "cgroup.procs"), String(pid)) };
    const container = unsharedContainer(cgroup, fuse!.mountpoint, ["--mount", "--propagation", "private"]);
    const output = await container.run(`"${tools.bins.node}/node" -e 'console.log(require("node:os").uptime(), require("node:os").totalmem())'\ncat /proc/uptime`, 30_000);
    const [nodeLine, procLine] = output.trim().split("\n");
    const [nodeUptime, totalmem] = nodeLine.split(" ").map(Number);
    const [uptime, idle] = procLine.split(" ").map(Number);
    const age = (Date.now() - container.startedAt()) / 1000;
    assert.equal(totalmem, consumerLimits.memoryBytes);
    for (const value of [nodeUptime, uptime]) assert.ok(value >= 0 && value <= age + 1, `uptime ${value} s; the container started ${age.toFixed(1)} s ago:\n${output}`);
    // No cpuset of its own: every online CPU of the host is its.
    assert.ok(idle >= 0 && idle <= uptime * availableParallelism() + 0.05, `idle ${idle} within uptime ${uptime} × CPUs`);
  });
});

/**
 * Each run is a container of its own: a fresh process tree in the cgroup (so its uptime
 * starts with the run), with the views bound read-only over /proc and /sys.
 */
function unsharedContainer(cgroup: Pick<LimitedCgroup, "relativePath" | "addProcess">, viewRoot: string, namespaces: string[]): ConsumerContainer {
  const binds = viewFiles.map((view) => `mount --bind -o ro "${viewRoot}/${view.path}" ${view.target}`).join(" && ");
  let startedAt = 0;
  return {
    bins: tools.bins,
    cpuSeconds: cgroupCpuSeconds(cgroup.relativePath),
    scriptsDir: join(dir, "scripts"),
    scratchDir: dir,
    startedAt: () => startedAt,
    async run(script, timeoutMs) {
      startedAt = Date.now();
      // sh waits for "go" until it is in the cgroup; its own group, so a timeout kills everything it started.
      const child = spawn("sh", ["-c", `read _ && exec unshare ${namespaces.join(" ")} sh -ec "$1"`, "sh", `${binds}\n${script}`], {
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
        env: { ...process.env, LD_LIBRARY_PATH: tools.libDir },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
      await once(child, "spawn");
      const timer = setTimeout(() => killGroup(child.pid!), timeoutMs);
      try {
        cgroup.addProcess(child.pid!);
        child.stdin.end("go\n");
        const [code, signal] = await exited;
        if (code !== 0) throw new Error(`consumer script ${signal === "SIGKILL" ? `killed after ${timeoutMs} ms` : `exited ${code}`}:\n${stderr}\n--- stdout ---\n${stdout}`);
        return stdout;
      } finally {
        clearTimeout(timer);
        // Whatever the script left running in the background (a failed step skips its kill).
        killGroup(child.pid!);
        if (child.exitCode === null && child.signalCode === null) await exited;
      }
    },
  };
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

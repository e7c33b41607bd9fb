/**
 * `node bench/threads.ts [--reads N] [--rounds R] [--tasks T]`: the cost of stat, loadavg
 * and uptime as the container grows: one reader in a cgroup of its own, and one in a
 * cgroup that also holds T sleeping tasks (default 1000; `sleep` processes, each one
 * thread, so the process walks are as long as the thread walks), read interleaved through
 * LXCFS and both procview layouts. Prints reads/s with 1 task and with T+1, and the
 * slowdown. Needs root, /dev/fuse and Debian's `lxcfs`.
 */

import { spawn } from "node:child_process";
import { once } from "node:events";
import { ContainerRegistry } from "../core/registry.ts";
import { measureInterleaved, startReader, stopReader, type Target } from "./readers.ts";
import { benchCgroup, benchLxcfs, benchProcview, describeMemory, runBench, wholeNumberOptions, withCleanUp } from "./setup.ts";
import { readsPerSecond } from "./summary.ts";
import type { LimitedCgroup } from "./limited-cgroup.ts";

const usage = `Usage: node bench/threads.ts [--reads N] [--rounds R] [--tasks T]
  --reads N   reads per target (default 5000: a round then spans several of the
              ~0.4 s windows in which a serving thread reuses a 1,000-task walk; 1,000
              reads measured the windows' phase more than the walk's cost)
  --rounds R  interleaved rounds (default 3)
  --tasks T   sleeping tasks in the busy cgroup (default 1000)`;

const readyTimeoutMs = 60_000;

/** T sleeping processes in `cgroup`: a shell moved in first, which then starts them. Stopped with its process group. */
async function startSleepers(cgroup: LimitedCgroup, count: number, cleanUps: Array<() => Promise<void>>): Promise<void> {
  const shell = spawn("sh", ["-c", `read go; i=0; while [ $i -lt ${count} ]; do sleep 3600 & i=$((i+1)); done; echo started; wait`], {
    detached: true,
    stdio: ["pipe", "pipe", "inherit"],
  });
  await once(shell, "spawn");
  cleanUps.push(async () => {
    try {
      process.kill(-shell.pid!, "SIGKILL");
    } catch {
      // Gone already.
    }
    if (shell.exitCode === null && shell.signalCode === null) await once(shell, "exit");
  });
  cgroup.addProcess(shell.pid!);
  shell.stdin!.write("go\n");
  const started = new Promise<void>((resolve, reject) => {
    shell.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("started") && resolve());
    shell.once("exit", (code) => reject(new Error(`the sleeper shell exited ${code}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${count} sleepers not started within ${readyTimeoutMs} ms`)), readyTimeoutMs)));
  try {
    await Promise.race([started, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

runBench("threads", () =>
  withCleanUp(async (cleanUps) => {
    const settings = wholeNumberOptions(process.argv.slice(2), usage, { reads: 5000, rounds: 3, tasks: 1000 });
    const idle = benchCgroup("procview-bench-idle", cleanUps);
    const busy = benchCgroup("procview-bench-busy", cleanUps);
    const lxcfs = await benchLxcfs(cleanUps);
    const procview = await benchProcview(cleanUps);
    const registry = new ContainerRegistry(procview.stateDir);
    registry.put({ id: "idle", cgroupPath: idle.relativePath, recordedAt: Date.now() });
    registry.put({ id: "busy", cgroupPath: busy.relativePath, recordedAt: Date.now() });
    const idleReader = await startReader(idle);
    const busyReader = await startReader(busy);
    cleanUps.push(async () => {
      await Promise.all([stopReader(idleReader), stopReader(busyReader)]);
    });
    await startSleepers(busy, settings.tasks, cleanUps);

    process.stdout.write(`stat, loadavg and uptime with 1 task and with ${settings.tasks + 1} in the reader's cgroup, ${settings.reads} reads per target\n`);
    const layouts = [
      { name: "lxcfs", path: (_id: string, view: string) => `${lxcfs.mountpoint}/proc/${view}`, daemonPid: lxcfs.pid },
      { name: "procview (by pid)", path: (_id: string, view: string) => `${procview.mountpoint}/proc/${view}`, daemonPid: procview.pid },
      { name: "procview (container)", path: (id: string, view: string) => `${procview.mountpoint}/containers/${id}/proc/${view}`, daemonPid: procview.pid },
    ];
    for (const view of ["stat", "loadavg", "uptime"]) {
      const targets: Target[] = layouts.flatMap((layout) => [
        { name: `${layout.name} idle`, paths: [layout.path("idle", view)], daemonPid: layout.daemonPid, readers: [idleReader] },
        { name: `${layout.name} busy`, paths: [layout.path("busy", view)], daemonPid: layout.daemonPid, readers: [busyReader] },
      ]);
      for (const target of targets) await target.readers![0].read({ paths: target.paths, reads: 20 });
      const { results } = await measureInterleaved([idleReader], targets, settings.reads, settings.rounds);
      const rate = (name: string) => readsPerSecond(results.find((result) => result.target === name)!);
      process.stdout.write(`\n${view}:\n${"target".padEnd(22)}  ${"1 task".padStart(9)}  ${`${settings.tasks + 1} tasks`.padStart(11)}  slowdown\n`);
      for (const layout of layouts) {
        const one = rate(`${layout.name} idle`);
        const many = rate(`${layout.name} busy`);
        process.stdout.write(
          `${layout.name.padEnd(22)}  ${Math.round(one).toLocaleString("en-US").padStart(9)}  ${Math.round(many).toLocaleString("en-US").padStart(11)}  ${(one / many).toFixed(2)}x\n`,
        );
      }
    }
    process.stdout.write(`\n${describeMemory("procview daemon", procview.pid)}\n`);
  }),
);

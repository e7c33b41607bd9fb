/**
 * `node bench/nri.ts [--containers N] [--block B]`: what the NRI plugin adds to
 * CreateContainer (and to create + start) on a real private containerd with NRI: N
 * containers each without the plugin, with it, and with it binding nothing
 * (`--default-policy opted-in`: the NRI round trip alone), in rotating blocks of B (the
 * plugin stopped and started between blocks), each in a pod made beforehand, timed around
 * the CRI call; and, from the plugin's own metrics, how long its CreateContainer handler
 * took (its share of that time; the rest is containerd's side of NRI and the transport).
 * Needs root, /dev/fuse and the integration harness's Debian packages.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { freePort } from "../integration/free-port.ts";
import { startProcviewStack } from "../integration/procview-stack.ts";
import { median } from "./summary.ts";
import { runBench, wholeNumberOptions, withCleanUp } from "./setup.ts";

const usage = `Usage: node bench/nri.ts [--containers N] [--block B]
  --containers N  containers timed in each arm (default 50)
  --block B       containers per block before switching the plugin (default 25)`;

function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

interface Arm {
  name: string;
  /** The plugin's arguments; undefined runs no plugin. */
  pluginArgs: string[] | undefined;
  create: number[];
  createAndStart: number[];
  /** The plugin's CreateContainer handler, from its procview_nri_event_duration_seconds: total seconds and count. */
  handler: { seconds: number; count: number };
}

/** Sum and count of the plugin's CreateContainer handler times in a /metrics text. */
function createHandlerTimes(metrics: string): { seconds: number; count: number } {
  const value = (suffix: string) => Number(new RegExp(`^procview_nri_event_duration_seconds_${suffix}\\{event="create_container"\\} (\\S+)$`, "m").exec(metrics)?.[1] ?? 0);
  return { seconds: value("sum"), count: value("count") };
}

runBench("nri", () =>
  withCleanUp(async (cleanUps) => {
    const settings = wholeNumberOptions(process.argv.slice(2), usage, { containers: 50, block: 25 });
    // Records and status files on a tmpfs, as in /run/procview on systemd hosts: each CreateContainer writes one.
    const stateDir = await mkdtemp("/dev/shm/procview-bench-state-");
    cleanUps.push(() => rm(stateDir, { recursive: true, force: true }));
    const stack = await startProcviewStack({ procview: false, stateDir });
    cleanUps.push(() => stack.stop());
    await stack.startFuse();
    const arms: Arm[] = [
      { name: "without plugin", pluginArgs: undefined, create: [], createAndStart: [], handler: { seconds: 0, count: 0 } },
      { name: "with plugin", pluginArgs: [], create: [], createAndStart: [], handler: { seconds: 0, count: 0 } },
      { name: "with plugin binding nothing", pluginArgs: ["--default-policy", "opted-in"], create: [], createAndStart: [], handler: { seconds: 0, count: 0 } },
    ];
    const metricsPort = await freePort();
    let made = 0;
    for (let turn = 0; arms.some((arm) => arm.create.length < settings.containers); turn++) {
      const arm = arms[turn % arms.length];
      if (arm.create.length >= settings.containers) continue;
      if (arm.pluginArgs !== undefined) await stack.startPlugin([...arm.pluginArgs, "--metrics-address", `127.0.0.1:${metricsPort}`]);
      for (let i = 0; i < settings.block && arm.create.length < settings.containers; i++) {
        const name = `bench-${made++}`;
        const pod = await stack.cri.runPod({ name, uid: `uid-${name}`, namespace: "procview-bench", cgroupParent: stack.containerd.cgroupParent });
        const created = performance.now();
        const id = await stack.cri.createContainer(pod, { name: "sleeper", image: stack.containerd.images.busybox, command: ["sleep", "3600"], memoryLimitBytes: 64 * 2 ** 20 });
        const started = performance.now();
        await stack.cri.startContainer(id);
        arm.create.push(started - created);
        arm.createAndStart.push(performance.now() - created);
      }
      await stack.cri.teardown();
      if (arm.pluginArgs !== undefined) {
        const block = createHandlerTimes(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
        arm.handler = { seconds: arm.handler.seconds + block.seconds, count: arm.handler.count + block.count };
        await stack.plugin!.stop();
      }
    }
    const cell = (values: number[]) => `${median(values).toFixed(1).padStart(7)}  ${percentile(values, 0.95).toFixed(1).padStart(7)}`;
    process.stdout.write(`CRI calls on a private containerd, ${settings.containers} containers per arm (ms)\n`);
    process.stdout.write(`${"".padEnd(28)}  ${"CreateContainer".padStart(16)}  ${"create + start".padStart(16)}\n${"".padEnd(28)}  ${"median".padStart(7)}  ${"p95".padStart(7)}  ${"median".padStart(7)}  ${"p95".padStart(7)}\n`);
    const handlerMean = (arm: Arm) => (arm.handler.count === 0 ? "" : `  handler ${((arm.handler.seconds / arm.handler.count) * 1000).toFixed(2).padStart(5)} ms mean`);
    for (const arm of arms) process.stdout.write(`${arm.name.padEnd(28)}  ${cell(arm.create)}  ${cell(arm.createAndStart)}${handlerMean(arm)}\n`);
    const [without, withPlugin] = arms;
    process.stdout.write(
      `plugin adds to CreateContainer: median ${(median(withPlugin.create) - median(without.create)).toFixed(1)} ms, p95 ${(
        percentile(withPlugin.create, 0.95) - percentile(without.create, 0.95)
      ).toFixed(1)} ms\n`,
    );
  }),
);

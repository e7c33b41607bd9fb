/**
 * `node bench/nri.ts [--containers N] [--block B]`: what the NRI plugin adds to
 * CreateContainer (and to create + start) on a real private containerd with NRI: N
 * containers with the plugin and N without (default 50 each), in alternating blocks of B
 * (the plugin stopped and started between blocks), each in a pod made beforehand, timed
 * around the CRI call. Needs root, /dev/fuse and the integration harness's Debian packages.
 */

import { startProcviewStack } from "../integration/procview-stack.ts";
import { median } from "./summary.ts";
import { runBench, wholeNumberOptions, withCleanUp } from "./setup.ts";

const usage = `Usage: node bench/nri.ts [--containers N] [--block B]
  --containers N  containers timed with and N without the plugin (default 50)
  --block B       containers per block before switching the plugin (default 25)`;

function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

runBench("nri", () =>
  withCleanUp(async (cleanUps) => {
    const settings = wholeNumberOptions(process.argv.slice(2), usage, { containers: 50, block: 25 });
    const stack = await startProcviewStack({ procview: false });
    cleanUps.push(() => stack.stop());
    await stack.startFuse();
    const timings = { without: { create: [] as number[], start: [] as number[] }, with: { create: [] as number[], start: [] as number[] } };
    let pluginOn = false;
    let made = 0;
    while (timings.with.create.length < settings.containers || timings.without.create.length < settings.containers) {
      const side = pluginOn ? timings.with : timings.without;
      for (let i = 0; i < settings.block && side.create.length < settings.containers; i++) {
        const name = `bench-${made++}`;
        const pod = await stack.cri.runPod({ name, uid: `uid-${name}`, namespace: "procview-bench", cgroupParent: stack.containerd.cgroupParent });
        const created = performance.now();
        const id = await stack.cri.createContainer(pod, { name: "sleeper", image: stack.containerd.images.busybox, command: ["sleep", "3600"], memoryLimitBytes: 64 * 2 ** 20 });
        const started = performance.now();
        await stack.cri.startContainer(id);
        side.create.push(started - created);
        side.start.push(performance.now() - created);
      }
      await stack.cri.teardown();
      if (pluginOn) await stack.plugin!.stop();
      else await stack.startPlugin();
      pluginOn = !pluginOn;
    }
    if (pluginOn) await stack.plugin!.stop();
    const row = (name: string, values: number[]) =>
      `${name.padEnd(34)}  ${median(values).toFixed(1).padStart(7)}  ${percentile(values, 0.95).toFixed(1).padStart(7)}`;
    process.stdout.write(`CRI calls on a private containerd ${settings.containers} containers each way (ms)\n${"".padEnd(34)}  ${"median".padStart(7)}  ${"p95".padStart(7)}\n`);
    process.stdout.write(row("CreateContainer without plugin", timings.without.create) + "\n");
    process.stdout.write(row("CreateContainer with plugin", timings.with.create) + "\n");
    process.stdout.write(row("create + start without plugin", timings.without.start) + "\n");
    process.stdout.write(row("create + start with plugin", timings.with.start) + "\n");
    process.stdout.write(
      `plugin adds: CreateContainer median ${(median(timings.with.create) - median(timings.without.create)).toFixed(1)} ms, p95 ${(
        percentile(timings.with.create, 0.95) - percentile(timings.without.create, 0.95)
      ).toFixed(1)} ms\n`,
    );
  }),
);

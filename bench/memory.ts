/**
 * `node bench/memory.ts [--reads N] [--busy-seconds S] [--one-shots N]`: the FUSE server's
 * RSS at its default, with the main thread serving alone (0) and with 1, 2 and 4 worker
 * threads, each after N reads of every view through both layouts by 2 readers (so every
 * thread has served), then once it has given back its startup pages, the same reads again;
 * what each extra worker costs; the highest RSS while the 2 readers read on for S seconds
 * (what a busy server holds: its heaps are collected and trimmed every few seconds,
 * core/heap-collection.ts, core/native-heap.ts); then again after N one-shot readers (a `cat` each, a new process
 * every open, as a monitoring script runs them), whose growth says whether the server keeps
 * anything per reading process. Needs root and /dev/fuse.
 */

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ContainerRegistry } from "../core/registry.ts";
import { processMemory, type ProcessMemory } from "./process-stats.ts";
import { startReader, stopReader } from "./readers.ts";
import { benchCgroup, benchProcview, runBench, startupPagesGivenBack, wholeNumberOptions, withCleanUp } from "./setup.ts";

const usage = `Usage: node bench/memory.ts [--reads N] [--busy-seconds S] [--one-shots N]
  --reads N         reads of every view per layout and reader before RSS is taken (default 500)
  --busy-seconds S  then reading on for S seconds, RSS sampled every second (default 20)
  --one-shots N     then reads of /proc/meminfo by a new cat process each (default 3000)`;

const runFile = promisify(execFile);

/** `count` reads of `path`, each by a `cat` of its own, one after another. */
async function oneShotReads(path: string, count: number): Promise<void> {
  const loop = 'i=0; while [ "$i" -lt "$2" ]; do cat "$1" > /dev/null || exit 1; i=$((i+1)); done';
  await runFile("/bin/sh", ["-c", loop, "one-shot", path, String(count)], { timeout: count * 100 });
}

/** The highest RSS of `pid`, sampled every second, while `read` runs round after round for `durationMs`. */
async function highestRssWhile(pid: number, durationMs: number, read: () => Promise<unknown>): Promise<number> {
  const end = Date.now() + durationMs;
  let highest = 0;
  const sampler = setInterval(() => (highest = Math.max(highest, processMemory(pid).rssKiB)), 1000);
  try {
    while (Date.now() < end) await read();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(highest, processMemory(pid).rssKiB);
}

const viewPaths = ["proc/meminfo", "proc/stat", "proc/cpuinfo", "proc/loadavg", "proc/uptime", "proc/diskstats", "proc/swaps", "sys/devices/system/cpu/online"];

runBench("memory", () =>
  withCleanUp(async (cleanUps) => {
    const settings = wholeNumberOptions(process.argv.slice(2), usage, { reads: 500, "busy-seconds": 20, "one-shots": 3000 });
    const cgroup = benchCgroup("procview-bench", cleanUps);
    const readers = [await startReader(cgroup), await startReader(cgroup)];
    cleanUps.push(async () => {
      await Promise.all(readers.map(stopReader));
    });
    // A start that strips types (the first after a change to the sources) keeps Node's type
    // stripper, ~10 MiB, in every thread that used it; later starts take the compile cache,
    // and the package runs built JavaScript.
    const warmUp: Array<() => Promise<void>> = [];
    await benchProcview(warmUp);
    for (const step of warmUp) await step();
    const rows: Array<ProcessMemory & { workers: string; released: [number, number]; busyKiB: number; afterOneShotsKiB: number }> = [];
    for (const workers of [undefined, 0, 1, 2, 4]) {
      const steps: Array<() => Promise<void>> = [];
      try {
        const procview = await benchProcview(steps, workers === undefined ? [] : ["--workers", String(workers)]);
        new ContainerRegistry(procview.stateDir).put({ id: "bench", cgroupPath: cgroup.relativePath, recordedAt: Date.now() });
        const paths = viewPaths.flatMap((path) => [`${procview.mountpoint}/${path}`, `${procview.mountpoint}/containers/bench/${path}`]);
        const readEveryView = () => Promise.all(readers.map((reader) => reader.read({ paths, reads: settings.reads * paths.length })));
        await readEveryView();
        const released = await startupPagesGivenBack(procview);
        // Serving's own pages of the executable come back in.
        await readEveryView();
        const memory = processMemory(procview.pid);
        const busyKiB = await highestRssWhile(procview.pid, settings["busy-seconds"] * 1000, readEveryView);
        await oneShotReads(`${procview.mountpoint}/proc/meminfo`, settings["one-shots"]);
        const afterOneShotsKiB = processMemory(procview.pid).rssKiB;
        rows.push({ workers: workers === undefined ? "default" : String(workers), ...memory, released, busyKiB, afterOneShotsKiB });
      } finally {
        for (const step of steps.reverse()) await step();
      }
    }
    const mib = (kib: number) => (kib / 1024).toFixed(1);
    process.stdout.write(
      `FUSE server RSS after ${settings.reads} reads of every view through both layouts by 2 readers (before and after it gave back its startup pages), the highest while they read on for ${settings["busy-seconds"]} s, then after ${settings["one-shots"]} one-shot readers\n` +
        `workers   RSS MiB  of it file-backed  file-backed at the release  reading on MiB  peak MiB  after one-shots MiB\n`,
    );
    for (const row of rows) {
      const released = `${row.released[0].toFixed(1)} → ${row.released[1].toFixed(1)}`;
      process.stdout.write(
        `${row.workers.padEnd(8)}  ${mib(row.rssKiB).padStart(7)}  ${mib(row.fileKiB).padStart(17)}  ${released.padStart(26)}  ${mib(row.busyKiB).padStart(14)}  ${mib(row.peakRssKiB).padStart(8)}  ${mib(row.afterOneShotsKiB).padStart(19)}\n`,
      );
    }
    const byWorkers = (n: string) => rows.find((row) => row.workers === n)!.rssKiB;
    process.stdout.write(`each extra serving thread: ${mib((byWorkers("4") - byWorkers("1")) / 3)} MiB (from 1 to 4)\n`);
  }),
);

/**
 * `node bench/views.ts [--reads N] [--rounds R] [--concurrent C]`: open + read-all + close
 * of every view, N times per target and reader count, through
 *   - native procfs (the floor; sysfs for cpu/online),
 *   - Debian's LXCFS (`lxcfs -l`) on a private mountpoint,
 *   - procview's LXCFS-compatible layout (by reader pid),
 *   - procview's container layout (containers/<id>/…),
 * by 1 reader, by C concurrent reader processes and by as many as the machine has CPUs.
 * Rounds alternate the targets so drifting machine load hits all of them alike. Every
 * reader sits in one cgroup with a 1 GiB memory limit, so LXCFS and procview both render
 * a container's view. "per daemon CPU-s" is reads over the CPU time the daemon spent: what
 * one fully busy serving thread gets through, which is how the server scales with cores.
 * Needs root, /dev/fuse and Debian's `lxcfs`. Cleans up its cgroup, mounts and processes.
 */

import { availableParallelism } from "node:os";
import { ContainerRegistry } from "../core/registry.ts";
import { measureInterleaved, startReader, stopReader, type Reader, type Target } from "./readers.ts";
import { benchCgroup, benchLxcfs, benchProcview, describeMemory, memoryLimitBytes, runBench, wholeNumberOptions, withCleanUp } from "./setup.ts";
import { formatThroughputTable } from "./summary.ts";

const usage = `Usage: node bench/views.ts [--reads N] [--rounds R] [--concurrent C] [--workers W]
  --reads N       reads per target, view and reader count, all readers together (default 3000)
  --rounds R      interleaved rounds the reads are split into (default 3)
  --concurrent C  reader processes in the concurrent run (default 8; the machine's CPU count runs too)
  --workers W     procview's serving worker threads, 0 for the main thread alone (default: procview's)`;

/** --workers W taken out of `argv` (0 is valid, unlike the other options): the server arguments it makes. */
function workersOption(argv: string[]): { rest: string[]; serverArgs: string[] } {
  const at = argv.indexOf("--workers");
  if (at === -1) return { rest: argv, serverArgs: [] };
  const value = argv[at + 1] ?? "";
  if (!/^\d+$/.test(value) || Number(value) > 64) throw new Error(`--workers must be a whole number from 0 to 64, not '${value}'\n${usage}`);
  return { rest: [...argv.slice(0, at), ...argv.slice(at + 2)], serverArgs: ["--workers", value] };
}

const containerId = "procview-bench";
const warmUpReads = 50;

/** Each view's path below a mount; procfs and sysfs serve it at "/" + path. */
const views = new Map<string, string>([
  ["meminfo", "proc/meminfo"],
  ["stat", "proc/stat"],
  ["cpuinfo", "proc/cpuinfo"],
  ["loadavg", "proc/loadavg"],
  ["uptime", "proc/uptime"],
  ["diskstats", "proc/diskstats"],
  ["swaps", "proc/swaps"],
  ["cpu/online", "sys/devices/system/cpu/online"],
]);

function memTotalKiB(meminfo: string): number {
  const match = /^MemTotal:\s+(\d+) kB$/m.exec(meminfo);
  if (match === null) throw new Error(`no MemTotal line in:\n${meminfo.slice(0, 300)}`);
  return Number(match[1]);
}

/** Every target answers every reader, and meminfo shows the limit where it should: the readers really are in the cgroup. */
async function warmUpAndCheck(readers: readonly Reader[], targets: readonly Target[], showsLimit: (target: Target) => boolean): Promise<void> {
  for (const target of targets) {
    for (const reader of readers) {
      const reply = await reader.read({ paths: target.paths, reads: warmUpReads });
      if (reply.lastContent.length === 0 && !target.paths[0].endsWith("swaps")) throw new Error(`${target.name} ${target.paths[0]} read empty`);
      if (!target.paths[0].endsWith("/meminfo")) continue;
      const seen = memTotalKiB(reply.lastContent);
      if (showsLimit(target) !== (seen === memoryLimitBytes / 1024)) {
        throw new Error(`${target.name} shows MemTotal ${seen} kB to reader ${reader.child.pid}`);
      }
    }
  }
}

runBench("views", () =>
  withCleanUp(async (cleanUps) => {
    const { rest, serverArgs } = workersOption(process.argv.slice(2));
    const settings = wholeNumberOptions(rest, usage, { reads: 3000, rounds: 3, concurrent: 8 });
    const startedAt = Date.now();
    const cpuCount = availableParallelism();
    const cgroup = benchCgroup("procview-bench", cleanUps);
    const lxcfs = await benchLxcfs(cleanUps);
    const procview = await benchProcview(cleanUps, serverArgs);
    new ContainerRegistry(procview.stateDir).put({ id: containerId, cgroupPath: cgroup.relativePath, recordedAt: Date.now() });

    const readerCounts = [...new Set([1, settings.concurrent, cpuCount])].sort((a, b) => a - b);
    const readers: Reader[] = [];
    cleanUps.push(async () => {
      await Promise.all(readers.map(stopReader));
    });
    for (let i = 0; i < readerCounts.at(-1)!; i++) readers.push(await startReader(cgroup));

    process.stdout.write(
      `open+read+close of every view, ${settings.reads} reads per target, view and reader count, ${settings.rounds} interleaved rounds, ` +
        `readers in cgroup ${cgroup.relativePath} (memory limit ${memoryLimitBytes / 2 ** 20} MiB), ${cpuCount} CPUs, node ${process.version}, ` +
        `procview ${serverArgs.length > 0 ? serverArgs.join(" ") : "with its default workers"}\n`,
    );
    for (const [view, path] of views) {
      const targets: Target[] = [
        { name: "procfs", paths: [`/${path}`] },
        { name: "lxcfs", paths: [`${lxcfs.mountpoint}/${path}`], daemonPid: lxcfs.pid },
        { name: "procview (by pid)", paths: [`${procview.mountpoint}/${path}`], daemonPid: procview.pid },
        { name: "procview (container)", paths: [`${procview.mountpoint}/containers/${containerId}/${path}`], daemonPid: procview.pid },
      ];
      await warmUpAndCheck(readers, targets, (target) => target.name !== "procfs");
      for (const readerCount of readerCounts) {
        const { results, notOverlapped } = await measureInterleaved(readers.slice(0, readerCount), targets, settings.reads, settings.rounds);
        process.stdout.write(`\n${view}, ${readerCount === 1 ? "1 reader" : `${readerCount} concurrent readers (processes)`}:\n`);
        process.stdout.write(formatThroughputTable(results, "lxcfs") + "\n");
        for (const [target, batches] of notOverlapped) {
          process.stdout.write(`note: ${target}: in ${batches} of ${settings.rounds} batches the readers were never all running at once\n`);
        }
      }
    }
    process.stdout.write(`\n${describeMemory("procview daemon", procview.pid)}; ${describeMemory("lxcfs", lxcfs.pid)}\n`);
    process.stdout.write(`views total ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
  }),
);

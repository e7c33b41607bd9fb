/**
 * `npm run bench [-- --reads N --rounds R]`: open + read-all + close of meminfo, N times
 * per target, through
 *   - native procfs (/proc/meminfo),
 *   - Debian's LXCFS on a private mountpoint (<lxcfs>/proc/meminfo),
 *   - procview's LXCFS-compatible layout (<procview>/proc/meminfo, by reader pid),
 *   - procview's container layout (<procview>/containers/<id>/proc/meminfo),
 * with 1 reader and with 8 concurrent reader processes. Rounds alternate the targets so
 * drifting machine load hits all of them alike. Every reader sits in one cgroup with a
 * 1 GiB memory limit, so LXCFS and procview both render a container's view, not the host's
 * (not less: 8 Node reader processes need some 400 MB between them).
 * Needs root, /dev/fuse and Debian's `lxcfs`. Cleans up its cgroup, mounts and processes.
 */

import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { ContainerRegistry } from "../core/registry.ts";
import { startLxcfs, type Lxcfs } from "../integration/lxcfs.ts";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";
import { createLimitedCgroup, type LimitedCgroup } from "./limited-cgroup.ts";
import { processCpuNs, processMemory } from "./process-stats.ts";
import type { ReadReply, ReadRequest } from "./reader.ts";
import { batchWallNs, formatThroughputTable, readersOverlapped, splitEvenly, type ReaderSpan, type TargetResult } from "./summary.ts";

const usage = `Usage: node bench/meminfo.ts [--reads N] [--rounds R] [--concurrent C]
  --reads N       reads per target and reader count, all readers together (default 20000)
  --rounds R      interleaved rounds the reads are split into (default 10)
  --concurrent C  reader processes in the concurrent run (default 8)`;

const memoryLimitBytes = 1024 * 1024 * 1024;
const containerId = "procview-bench";
const warmUpReads = 300;
const readerModule = fileURLToPath(new URL("./reader.ts", import.meta.url));

interface BenchSettings {
  reads: number;
  rounds: number;
  concurrent: number;
}

interface Target {
  name: string;
  path: string;
  /** The daemon serving it, charged with CPU per read; none for procfs. */
  daemonPid?: number;
  /** Whether it shows the readers' cgroup limit rather than the host's memory. */
  showsLimit: boolean;
}

function parseSettings(argv: string[]): BenchSettings {
  const { values } = parseArgs({
    args: argv,
    options: { reads: { type: "string" }, rounds: { type: "string" }, concurrent: { type: "string" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    process.exit(0);
  }
  const whole = (name: string, text: string | undefined, fallback: number, max: number): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new Error(`--${name} must be a whole number from 1 to ${max}, not '${text}'`);
    return value;
  };
  const settings = {
    reads: whole("reads", values.reads, 20_000, 10_000_000),
    rounds: whole("rounds", values.rounds, 10, 100),
    concurrent: whole("concurrent", values.concurrent, 8, 64),
  };
  if (settings.reads < settings.rounds * settings.concurrent) {
    throw new Error(`--reads ${settings.reads} is too few for ${settings.rounds} rounds of ${settings.concurrent} readers`);
  }
  return settings;
}

interface Reader {
  child: ChildProcess;
  read(request: ReadRequest): Promise<Extract<ReadReply, { ok: true }>>;
}

async function startReader(cgroup: LimitedCgroup): Promise<Reader> {
  const child = fork(readerModule, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  await once(child, "spawn");
  cgroup.addProcess(child.pid!);
  return {
    child,
    async read(request) {
      const reply = once(child, "message") as Promise<[ReadReply]>;
      child.send(request);
      const [answer] = await reply;
      if (!answer.ok) throw new Error(`reader ${child.pid}: ${answer.error}`);
      return answer;
    },
  };
}

async function stopReader(reader: Reader): Promise<void> {
  if (reader.child.exitCode !== null || reader.child.signalCode !== null) return;
  const exited = once(reader.child, "exit");
  reader.child.disconnect();
  await exited;
}

/** One batch: `reads` split over `readers`, all started at once; the readers' spans. */
async function runBatch(readers: readonly Reader[], path: string, reads: number): Promise<ReaderSpan[]> {
  const shares = splitEvenly(reads, readers.length);
  const replies = await Promise.all(readers.map((reader, index) => reader.read({ path, reads: shares[index] })));
  return replies.map((reply) => ({ startNs: BigInt(reply.startNs), endNs: BigInt(reply.endNs), reads: reply.reads }));
}

function memTotalKiB(meminfo: string): number {
  const match = /^MemTotal:\s+(\d+) kB$/m.exec(meminfo);
  if (match === null) throw new Error(`no MemTotal line in:\n${meminfo.slice(0, 300)}`);
  return Number(match[1]);
}

/** Every target read by every reader shows the limit it should: the readers really are in the cgroup. */
async function warmUpAndCheck(readers: readonly Reader[], targets: readonly Target[]): Promise<void> {
  const limitKiB = memoryLimitBytes / 1024;
  for (const target of targets) {
    for (const reader of readers) {
      const reply = await reader.read({ path: target.path, reads: warmUpReads });
      const seen = memTotalKiB(reply.lastContent);
      if (target.showsLimit !== (seen === limitKiB)) {
        throw new Error(`${target.name} shows MemTotal ${seen} kB to reader ${reader.child.pid}; expected ${target.showsLimit ? "" : "not "}${limitKiB} kB`);
      }
    }
  }
}

interface Measurement {
  results: TargetResult[];
  /** Per target, the batches whose readers were never all running at once (procfs batches can be that short). */
  notOverlapped: Map<string, number>;
}

async function measure(readers: readonly Reader[], targets: readonly Target[], settings: BenchSettings): Promise<Measurement> {
  const results = new Map<string, TargetResult>(
    targets.map((target) => [target.name, { target: target.name, rounds: [], daemonCpuNs: target.daemonPid === undefined ? undefined : 0n }]),
  );
  const perRound = splitEvenly(settings.reads, settings.rounds);
  const notOverlapped = new Map<string, number>();
  for (let round = 0; round < settings.rounds; round++) {
    // Rotate the order too, so no target always follows the same neighbour.
    const order = targets.map((_, index) => targets[(index + round) % targets.length]);
    for (const target of order) {
      const cpuBefore = target.daemonPid === undefined ? 0n : processCpuNs(target.daemonPid);
      const spans = await runBatch(readers, target.path, perRound[round]);
      const result = results.get(target.name)!;
      result.rounds.push({ reads: perRound[round], wallNs: batchWallNs(spans) });
      if (target.daemonPid !== undefined) result.daemonCpuNs! += processCpuNs(target.daemonPid) - cpuBefore;
      if (readers.length > 1 && !readersOverlapped(spans)) notOverlapped.set(target.name, (notOverlapped.get(target.name) ?? 0) + 1);
    }
  }
  return { results: [...results.values()], notOverlapped };
}

function describeMemory(name: string, pid: number): string {
  const memory = processMemory(pid);
  return `${name} RSS ${(memory.rssKiB / 1024).toFixed(1)} MiB (peak ${(memory.peakRssKiB / 1024).toFixed(1)} MiB)`;
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("the benchmark makes cgroups and mounts: run it as root");

  const cleanUps: Array<() => Promise<void>> = [];
  const cleanUp = async () => {
    for (const step of cleanUps.splice(0).reverse()) {
      await step().catch((error: Error) => process.stderr.write(`clean-up: ${error.message}\n`));
    }
  };
  const interrupted = (signal: NodeJS.Signals) => {
    void cleanUp().finally(() => process.kill(process.pid, signal));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);

  try {
    const startedAt = Date.now();
    const cpuCount = availableParallelism();
    // Limits that bind memory only: a CPU quota or a one-CPU set would throttle the readers, not the filesystems.
    const cgroup = createLimitedCgroup("procview-bench", {
      memoryBytes: memoryLimitBytes,
      cpus: readFileSync("/sys/devices/system/cpu/online", "utf8").trim(),
      cpuQuotaUs: cpuCount * 100_000,
      cpuPeriodUs: 100_000,
    });
    cleanUps.push(() => cgroup.remove());
    const lxcfs: Lxcfs = await startLxcfs();
    cleanUps.push(() => lxcfs.stop());
    const procview: ProcviewFuse = await startProcviewFuse();
    cleanUps.push(() => procview.stop());
    new ContainerRegistry(procview.stateDir).put({ id: containerId, cgroupPath: cgroup.relativePath, recordedAt: Date.now() });

    const readers: Reader[] = [];
    cleanUps.push(async () => {
      await Promise.all(readers.map(stopReader));
    });
    for (let i = 0; i < settings.concurrent; i++) readers.push(await startReader(cgroup));

    const targets: Target[] = [
      { name: "procfs", path: "/proc/meminfo", showsLimit: false },
      { name: "lxcfs", path: `${lxcfs.mountpoint}/proc/meminfo`, daemonPid: lxcfs.pid, showsLimit: true },
      { name: "procview (by pid)", path: `${procview.mountpoint}/proc/meminfo`, daemonPid: procview.pid, showsLimit: true },
      { name: "procview (container)", path: `${procview.mountpoint}/containers/${containerId}/proc/meminfo`, daemonPid: procview.pid, showsLimit: true },
    ];
    await warmUpAndCheck(readers, targets);

    process.stdout.write(
      `meminfo open+read+close, ${settings.reads} reads per target and reader count, ${settings.rounds} interleaved rounds, ` +
        `readers in cgroup ${cgroup.relativePath} (memory limit ${memoryLimitBytes / 2 ** 20} MiB), ${cpuCount} CPUs, node ${process.version}\n`,
    );
    for (const readerCount of [1, settings.concurrent]) {
      const { results, notOverlapped } = await measure(readers.slice(0, readerCount), targets, settings);
      process.stdout.write(`\n${readerCount === 1 ? "1 reader" : `${readerCount} concurrent readers (processes)`}:\n`);
      process.stdout.write(formatThroughputTable(results, "lxcfs") + "\n");
      for (const [target, batches] of notOverlapped) {
        process.stdout.write(`note: ${target}: in ${batches} of ${settings.rounds} batches the readers were never all running at once\n`);
      }
      process.stdout.write(`${describeMemory("procview daemon", procview.pid)}; ${describeMemory("lxcfs", lxcfs.pid)}\n`);
    }
    process.stdout.write(`\ntotal ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
  } finally {
    await cleanUp();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});

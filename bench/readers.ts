/**
 * Reader processes for the read benchmarks (bench/reader.ts forked, one per concurrent
 * reader, each moved into a cgroup) and the interleaved measurement of targets through them.
 */

import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { LimitedCgroup } from "./limited-cgroup.ts";
import { processCpuNs } from "./process-stats.ts";
import type { ReadReply, ReadRequest } from "./reader.ts";
import { batchWallNs, readersOverlapped, splitEvenly, type ReaderSpan, type TargetResult } from "./summary.ts";

const readerModule = fileURLToPath(new URL("./reader.ts", import.meta.url));

export interface Reader {
  child: ChildProcess;
  read(request: ReadRequest): Promise<Extract<ReadReply, { ok: true }>>;
}

export async function startReader(cgroup: LimitedCgroup): Promise<Reader> {
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

export async function stopReader(reader: Reader): Promise<void> {
  if (reader.child.exitCode !== null || reader.child.signalCode !== null) return;
  const exited = once(reader.child, "exit");
  reader.child.disconnect();
  await exited;
}

/** What one table row reads: `paths` in turn, by `readers`; `daemonPid` is charged with CPU per read. */
export interface Target {
  name: string;
  paths: string[];
  daemonPid?: number;
  /** Readers of their own (another cgroup); the measurement's readers otherwise. */
  readers?: readonly Reader[];
}

/** One batch: `reads` split over `readers`, all started at once; the readers' spans. */
async function runBatch(readers: readonly Reader[], paths: string[], reads: number): Promise<ReaderSpan[]> {
  const shares = splitEvenly(reads, readers.length);
  const replies = await Promise.all(readers.map((reader, index) => reader.read({ paths, reads: shares[index] })));
  return replies.map((reply) => ({ startNs: BigInt(reply.startNs), endNs: BigInt(reply.endNs), reads: reply.reads }));
}

export interface Measurement {
  results: TargetResult[];
  /** Per target, the batches whose readers were never all running at once (procfs batches can be that short). */
  notOverlapped: Map<string, number>;
}

/**
 * `reads` per target, split into `rounds`; each round reads every target once, in an
 * order rotated each round, so drifting machine load hits all targets alike.
 */
export async function measureInterleaved(readers: readonly Reader[], targets: readonly Target[], reads: number, rounds: number): Promise<Measurement> {
  const results = new Map<string, TargetResult>(
    targets.map((target) => [target.name, { target: target.name, rounds: [], daemonCpuNs: target.daemonPid === undefined ? undefined : 0n }]),
  );
  const perRound = splitEvenly(reads, rounds);
  const notOverlapped = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    const order = targets.map((_, index) => targets[(index + round) % targets.length]);
    for (const target of order) {
      const targetReaders = target.readers ?? readers;
      const cpuBefore = target.daemonPid === undefined ? 0n : processCpuNs(target.daemonPid);
      const spans = await runBatch(targetReaders, target.paths, perRound[round]);
      const result = results.get(target.name)!;
      result.rounds.push({ reads: perRound[round], wallNs: batchWallNs(spans) });
      if (target.daemonPid !== undefined) result.daemonCpuNs! += processCpuNs(target.daemonPid) - cpuBefore;
      if (targetReaders.length > 1 && !readersOverlapped(spans)) notOverlapped.set(target.name, (notOverlapped.get(target.name) ?? 0) + 1);
    }
  }
  return { results: [...results.values()], notOverlapped };
}

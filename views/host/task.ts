/** What procfs says about one process or thread of a cgroup. */

import { readOptionalFile } from "../../core/optional-file.ts";

export interface TaskStatus {
  /** The scheduler state letter: R running, D uninterruptible, S sleeping, … */
  state: string;
  /** The task's id in its innermost pid namespace (the last NSpid entry): what a container sees. */
  namespacePid: number;
}

/** /proc/<tid>/status → state and namespace pid; undefined when the text lacks them. */
export function parseTaskStatus(text: string): TaskStatus | undefined {
  const state = /^State:\s+(\S)/m.exec(text)?.[1];
  const nspid = /^NSpid:\s+([\d\s]+)$/m.exec(text)?.[1].trim().split(/\s+/).at(-1);
  const pid = nspid ?? /^Pid:\s+(\d+)/m.exec(text)?.[1];
  if (state === undefined || pid === undefined) return undefined;
  return { state, namespacePid: Number(pid) };
}

export interface ProcessStat {
  /** The parent's pid (host pid namespace); 0 for the host's init. */
  parentPid: number;
  /** When the process started, in USER_HZ ticks since boot (field 22). */
  startTicks: number;
}

/** /proc/<pid>/stat → parent pid (field 4) and start time (field 22); undefined when malformed. */
export function parseProcessStat(statText: string): ProcessStat | undefined {
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
  const close = statText.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = statText.slice(close + 2).split(" ");
  const parent = fields[4 - 3];
  const start = fields[22 - 3];
  if (parent === undefined || start === undefined || !/^\d+$/.test(parent) || !/^\d+$/.test(start)) return undefined;
  return { parentPid: Number(parent), startTicks: Number(start) };
}

/** A process's stat; undefined when it has exited. */
export function readProcessStat(procDir: string, pid: number): ProcessStat | undefined {
  const text = readOptionalFile(`${procDir}/${pid}/stat`);
  return text === undefined ? undefined : parseProcessStat(text);
}

/** A task's status; undefined when it has exited meanwhile (tasks come and go while a cgroup is read). */
export function readTaskStatus(procDir: string, tid: number): TaskStatus | undefined {
  const text = readOptionalFile(`${procDir}/${tid}/status`);
  return text === undefined ? undefined : parseTaskStatus(text);
}

export interface TaskCounts {
  /** Threads in state R. */
  running: number;
  /** Threads in state D. */
  blocked: number;
  /** All threads that still exist. */
  total: number;
  /** The highest thread id as the container numbers them (its pid namespace): the nearest to the kernel's "last pid" we can know. */
  lastPid: number;
}

/** The states of a cgroup's threads at one moment, before any reader is counted. */
export interface ThreadStateSample {
  counts: TaskCounts;
  /** Each thread that existed → its state letter. */
  states: Map<number, string>;
}

/** States of the given threads (host ids); threads that exited meanwhile are not counted. */
export function sampleThreadStates(procDir: string, tids: readonly number[]): ThreadStateSample {
  const counts = { running: 0, blocked: 0, total: 0, lastPid: 0 };
  const states = new Map<number, string>();
  for (const tid of tids) {
    const status = readTaskStatus(procDir, tid);
    if (status === undefined) continue;
    states.set(tid, status.state);
    counts.total++;
    if (status.state === "R") counts.running++;
    else if (status.state === "D") counts.blocked++;
    counts.lastPid = Math.max(counts.lastPid, status.namespacePid);
  }
  return { counts, states };
}

/**
 * A sample's counts as `readerTid`, the thread reading the view, sees them: the kernel
 * counts it as running (it runs the read), though while procview renders it sleeps
 * waiting for the FUSE reply (state D) or did something else when the sample was taken.
 * `joinedSince`: the reader is in the cgroup but was not when the sample was taken.
 */
export function countsForReader(sample: ThreadStateSample, readerTid: number, joinedSince = false): TaskCounts {
  const state = sample.states.get(readerTid);
  if (state === undefined) {
    return joinedSince ? { ...sample.counts, running: sample.counts.running + 1, total: sample.counts.total + 1 } : sample.counts;
  }
  if (state === "R") return sample.counts;
  return { ...sample.counts, running: sample.counts.running + 1, blocked: sample.counts.blocked - (state === "D" ? 1 : 0) };
}

/** States of the given threads (host ids), `readerTid` counted as running (see countsForReader). */
export function countTaskStates(procDir: string, tids: readonly number[], readerTid = 0): TaskCounts {
  return countsForReader(sampleThreadStates(procDir, tids), readerTid);
}

/** The earliest start (USER_HZ ticks since boot) among the processes; undefined when none is left. */
export function oldestStartTicks(procDir: string, pids: readonly number[]): number | undefined {
  let oldest: number | undefined;
  for (const pid of pids) {
    const start = readProcessStat(procDir, pid)?.startTicks;
    if (start !== undefined && (oldest === undefined || start < oldest)) oldest = start;
  }
  return oldest;
}

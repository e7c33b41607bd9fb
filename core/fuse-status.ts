/**
 * Whether the FUSE server is serving, as the NRI plugin must know before it injects
 * binds (a bind of a dead FUSE mount reads "Transport endpoint is not connected").
 *
 * The server leaves a status file naming its pid, that pid's start time, its mountpoint
 * and its mount's device. The plugin checks that this very process still runs (a pid alone
 * can be reused), that its mount is the one at the mountpoint, and that the mount answers: a
 * statfs goes to the server, so a hung or dead server fails it. That statfs is given up
 * on after a timeout, because a stat of a hung FUSE mount blocks and CreateContainer must
 * never wait on the FUSE process.
 */

import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { join } from "node:path";
import { mountPointsOfType } from "./mountinfo.ts";
import { makeRecordsPrivate } from "./registry.ts";
import { syscalls, type Syscalls } from "./syscalls.ts";

export const fuseFsType = "fuse.procview";

export interface FuseStatus {
  pid: number;
  mountpoint: string;
  startedAt: number;
  /** The server process's start time (field 22 of /proc/<pid>/stat, clock ticks after boot); absent in older servers' files. */
  pidStartTime?: number;
  /** The device ("major:minor") of the mount it serves; absent in older servers' files. */
  device?: string;
}

export type Liveness = { live: true; status: FuseStatus } | { live: false; reason: string };

function statusFile(stateDir: string): string {
  return join(stateDir, "fuse.json");
}

/** Writes the status file; the pid's start time is read from /proc unless given. */
export function writeFuseStatus(stateDir: string, status: FuseStatus): void {
  makeRecordsPrivate(stateDir);
  const file = statusFile(stateDir);
  const pidStartTime = status.pidStartTime ?? processStartTime(status.pid);
  writeFileSync(`${file}.tmp`, JSON.stringify({ ...status, pidStartTime }) + "\n", { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Field 22 (starttime) of a /proc/<pid>/stat text; the command name (field 2) may hold spaces and parentheses. */
export function parseProcStatStartTime(text: string): number | undefined {
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state).
  const value = Number(fields[22 - 3]);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** When process `pid` started (clock ticks after boot), or undefined when there is no such process. */
export function processStartTime(pid: number, procDir = "/proc"): number | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    return parseProcStatStartTime(readFileSync(`${procDir}/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** Removes the status file if it is still ours (a successor may have replaced it). */
export function clearFuseStatus(stateDir: string, pid: number): void {
  const current = readFuseStatus(stateDir);
  if (current?.pid === pid) rmSync(statusFile(stateDir), { force: true });
}

export function readFuseStatus(stateDir: string): FuseStatus | undefined {
  try {
    const value = JSON.parse(readFileSync(statusFile(stateDir), "utf8")) as FuseStatus;
    if (!Number.isInteger(value.pid) || typeof value.mountpoint !== "string") return undefined;
    if (value.pidStartTime !== undefined && !Number.isSafeInteger(value.pidStartTime)) return undefined;
    if (value.device !== undefined && !/^\d+:\d+$/.test(String(value.device))) return undefined;
    return value;
  } catch {
    return undefined;
  }
}

/** Mount points of procview FUSE mounts in a mountinfo text. */
export function procviewMountpoints(mountinfo: string): string[] {
  return mountPointsOfType(mountinfo, fuseFsType);
}

export interface LivenessProbe {
  readStatus: () => FuseStatus | undefined;
  /** See processStartTime(). */
  startTimeOf: (pid: number) => number | undefined;
  /** The device of the filesystem at a path, without asking a FUSE server (syscalls.ts deviceOf); undefined where it cannot be told. */
  deviceOf: (path: string) => string | undefined;
  /** The mount table: read only for a status file without a device (an older server's), or where deviceOf cannot tell. */
  mountinfo: () => string;
  /** Resolves undefined when the mount answered in time, else why not. */
  answers: (mountpoint: string) => Promise<string | undefined>;
}

export async function checkFuseLiveness(mountpoint: string, probe: LivenessProbe): Promise<Liveness> {
  const status = probe.readStatus();
  if (!status) return { live: false, reason: "no FUSE server status file" };
  if (status.mountpoint !== mountpoint) {
    return { live: false, reason: `FUSE server serves ${status.mountpoint}, not ${mountpoint}` };
  }
  const startTime = probe.startTimeOf(status.pid);
  if (startTime === undefined) return { live: false, reason: `FUSE server pid ${status.pid} is gone` };
  if (status.pidStartTime !== undefined && startTime !== status.pidStartTime) {
    return { live: false, reason: `FUSE server pid ${status.pid} is gone: that pid now belongs to a process started later` };
  }
  // By the device where the status names one: the mount table grows with the node's
  // containers (1,500 mounts are 540 KB and ~1.5 ms to parse), and this runs at every CreateContainer.
  const device = status.device === undefined ? undefined : probe.deviceOf(mountpoint);
  if (device !== undefined && device !== status.device) {
    return { live: false, reason: `the mount at ${mountpoint} (device ${device}) is not the one FUSE server pid ${status.pid} serves (device ${status.device})` };
  }
  if (device === undefined && !procviewMountpoints(probe.mountinfo()).includes(mountpoint)) {
    return { live: false, reason: `no ${fuseFsType} mount at ${mountpoint}` };
  }
  const silence = await probe.answers(mountpoint);
  if (silence !== undefined) return { live: false, reason: `FUSE server pid ${status.pid} does not answer: ${silence}` };
  return { live: true, status };
}

/** How long the statfs of the mount may take: CreateContainer must answer within containerd's 2 s. */
export const answerTimeoutMs = 1000;

const outstandingStatfs = new Map<string, { since: number; answer: Promise<string | undefined> }>();

/**
 * statfs of `mountpoint`, given up on after `timeoutMs`. It runs in libuv's thread pool,
 * in process: an exec of stat(1) cost 9-18 ms of the container's CreateContainer, this
 * costs ~0.2 ms. A hung FUSE server keeps the thread waiting until it answers or dies
 * (only a fatal signal ends a FUSE wait), so there is at most one statfs per mountpoint:
 * while it waits, later probes share it, and once it is late they answer at once.
 */
export function statfsAnswers(mountpoint: string, timeoutMs = answerTimeoutMs): Promise<string | undefined> {
  let probe = outstandingStatfs.get(mountpoint);
  if (probe === undefined) {
    const answer = statfs(mountpoint).then(
      () => undefined,
      (err: Error) => `statfs of ${mountpoint} failed: ${err.message}`,
    );
    probe = { since: Date.now(), answer };
    outstandingStatfs.set(mountpoint, probe);
    void answer.then(() => outstandingStatfs.delete(mountpoint));
  }
  const late = `statfs of ${mountpoint} took longer than ${timeoutMs} ms`;
  const left = probe.since + timeoutMs - Date.now();
  if (left <= 0) return Promise.resolve(late);
  const { answer } = probe;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(late), left);
    void answer.then((silence) => {
      clearTimeout(timer);
      resolve(silence);
    });
  });
}

/**
 * Whether a statfs still waits for a FUSE server that does not answer. A normal exit
 * joins libuv's pool threads and would wait with it: such a process must end by a signal.
 */
export function statfsStillWaiting(): boolean {
  return outstandingStatfs.size > 0;
}

/**
 * The real probe; `answers` is statfsAnswers unless given (e.g. reused through
 * reusingAnswers). `byDevice` tells the mount by its device, for a long-lived caller at
 * every container (the NRI plugin): the FFI it takes is loaded here (~9 ms, once), not at
 * the first CreateContainer. A one-shot process (procview-runc) reads the mount table.
 */
export function hostLivenessProbe(stateDir: string, answers: AnswerProbe = statfsAnswers, options: { byDevice?: boolean } = {}): LivenessProbe {
  return {
    readStatus: () => readFuseStatus(stateDir),
    startTimeOf: processStartTime,
    deviceOf: options.byDevice ? deviceReader() : () => undefined,
    mountinfo: () => readFileSync("/proc/self/mountinfo", "utf8"),
    answers,
  };
}

/** syscalls.ts deviceOf, undefined for a path that does not exist or without FFI (Deno without --allow-ffi). */
function deviceReader(): (path: string) => string | undefined {
  let calls: Syscalls | undefined;
  try {
    calls = syscalls();
  } catch {
    calls = undefined;
  }
  return (path) => {
    try {
      return calls?.deviceOf(path);
    } catch {
      return undefined;
    }
  };
}

export interface ReuseOptions {
  /** How long "it answered" is reused. */
  answeredMs: number;
  now?: () => number;
}

export type AnswerProbe = (mountpoint: string) => Promise<string | undefined>;

/**
 * The mount's answer (see statfsAnswers), reused briefly when it answered: containers
 * created in a burst cost one statfs. A failure is probed again at the next call (the
 * server may just have started; a hung one is answered at once by statfsAnswers while its
 * statfs waits). Concurrent calls share a probe. Only this step is reused: the status
 * file, the pid and the mount table are checked at every call, so a server that stopped
 * or died is seen at once.
 */
export function reusingAnswers(answers: AnswerProbe, options: ReuseOptions): AnswerProbe {
  const now = options.now ?? Date.now;
  let answeredUntil: { mountpoint: string; until: number } | undefined;
  let pending: { mountpoint: string; answer: Promise<string | undefined> } | undefined;
  return (mountpoint) => {
    if (answeredUntil?.mountpoint === mountpoint && now() < answeredUntil.until) return Promise.resolve(undefined);
    if (pending?.mountpoint === mountpoint) return pending.answer;
    const answer = answers(mountpoint).then(
      (silence) => {
        if (pending?.answer === answer) pending = undefined;
        answeredUntil = silence === undefined ? { mountpoint, until: now() + options.answeredMs } : undefined;
        return silence;
      },
      (err: unknown) => {
        if (pending?.answer === answer) pending = undefined;
        throw err;
      },
    );
    pending = { mountpoint, answer };
    return answer;
  };
}

/**
 * The serving process's pid alone, for supervisors: systemd's PIDFile= follows a
 * `procview fuse --replace` successor as the service's main process when the replaced
 * one exits, because the successor writes this file before that.
 */
export function fusePidFile(stateDir: string): string {
  return join(stateDir, "fuse.pid");
}

export function writeFusePidFile(stateDir: string, pid: number): void {
  const file = fusePidFile(stateDir);
  writeFileSync(`${file}.tmp`, `${pid}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Removes the pid file if it still names `pid`. */
export function clearFusePidFile(stateDir: string, pid: number): void {
  try {
    if (Number(readFileSync(fusePidFile(stateDir), "utf8").trim()) === pid) rmSync(fusePidFile(stateDir), { force: true });
  } catch {
    // No pid file: nothing to clear.
  }
}

/**
 * procview's daemons as an operator runs them: `procview fuse` and `procview nri`
 * started through the real CLI, each with its JSON log in a file that failures quote.
 */

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { procviewMountpoints, readFuseStatus } from "../core/fuse-status.ts";

const launcher = fileURLToPath(new URL("../bin/procview.js", import.meta.url));
const readyTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

export interface ProcviewProcess {
  readonly pid: number;
  readonly logFile: string;
  /** The JSON records this process has logged so far (not those of earlier processes sharing the log file). */
  records(): Array<Record<string, unknown>>;
  /** Whether the process is still running. */
  running(): boolean;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it has exited. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface ProcviewFuse extends ProcviewProcess {
  readonly mountpoint: string;
  readonly stateDir: string;
}

/** `command`: what runs procview, the launcher under this Node by default. */
function startProcview(args: string[], logFile: string, command: string[] = [process.execPath, launcher]): ProcviewProcess {
  const logFd = openSync(logFile, "a");
  // A restarted process appends to the same file: its records start here.
  const logStart = statSync(logFile).size;
  const child: ChildProcess = spawn(command[0], [...command.slice(1), ...args], { stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  if (child.pid === undefined) throw new Error(`cannot start procview ${args.join(" ")}`);
  const exited = once(child, "exit");
  const running = () => child.exitCode === null && child.signalCode === null;
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid,
    logFile,
    running,
    records: () => readRecords(logFile, logStart),
    stop(signal = "SIGTERM") {
      stopping ??= (async () => {
        if (!running()) return;
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

function readRecords(logFile: string, fromByte: number): Array<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(logFile).subarray(fromByte).toString("utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function waitFor(what: string, process_: ProcviewProcess, ready: () => boolean): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  while (!ready()) {
    if (!process_.running() || Date.now() > deadline) {
      await process_.stop();
      throw new Error(`${what} did not become ready:\n${readFileSync(process_.logFile, "utf8")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function isProcviewMounted(mountpoint: string): boolean {
  return procviewMountpoints(readFileSync("/proc/self/mountinfo", "utf8")).includes(mountpoint);
}

export interface FuseProcessOptions {
  /** A folder for mountpoint, state and log; a fresh temp folder (removed by stop()) by default. */
  dir?: string;
  /** The command that runs the launcher; this Node by default (e.g. ["deno", "run", "-A"]). */
  runtime?: string[];
  /** The command that is procview, instead of a runtime with the launcher (e.g. the single executable dist/procview). */
  command?: string[];
  /** `--replace`: take the live server's connection over; ready once the status file names this process. */
  replace?: boolean;
  /** Another state dir than the folder's (to reach no server's handover socket). */
  stateDir?: string;
  extraArgs?: string[];
}

/**
 * `procview fuse` on private folders, ready once the kernel lists its mount and its status
 * file (which the plugin and procview-runc check) names it: it writes that file after mounting.
 */
export async function startProcviewFuse(options: FuseProcessOptions = {}): Promise<ProcviewFuse> {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "procview-fuse-")));
  const mountpoint = join(dir, "mnt");
  const stateDir = options.stateDir ?? join(dir, "state");
  // A server killed before (crash-recovery tests) leaves a dead mount here, which mkdir cannot enter: the new server replaces it.
  await mkdir(mountpoint, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOTCONN") throw err;
  });
  await mkdir(stateDir, { recursive: true });
  const replace = options.replace ? ["--replace"] : [];
  // Each server its own log: a successor shares the folder with the server it replaces.
  const logFile = join(dir, options.replace ? `fuse-${Date.now()}.log` : "fuse.log");
  const server = startProcview(
    ["fuse", "--mountpoint", mountpoint, "--state-dir", stateDir, ...replace, ...(options.extraArgs ?? [])],
    logFile,
    options.command ?? [...(options.runtime ?? [process.execPath]), launcher],
  );
  // Its own serving record and status file, not only a listed mount: a dead server's mount is listed too.
  await waitFor(
    "procview fuse",
    server,
    () =>
      isProcviewMounted(mountpoint) &&
      readFuseStatus(stateDir)?.pid === server.pid &&
      server.records().some((r) => r.msg === "FUSE server serving" && r.pid === server.pid),
  );
  const stopServer = server.stop;
  let stopping: Promise<void> | undefined;
  return {
    ...server,
    mountpoint,
    stateDir,
    stop(signal) {
      stopping ??= (async () => {
        await stopServer(signal);
        // A server killed without its clean-up leaves a dead mount behind; a server that
        // was replaced leaves its successor's live one, which is not ours to remove.
        const servedBy = readFuseStatus(stateDir)?.pid;
        if (isProcviewMounted(mountpoint) && (servedBy === undefined || servedBy === server.pid)) execFileSync("umount", ["--lazy", mountpoint]);
        if (ownsDir) await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

export interface NriProcessOptions {
  socket: string;
  mountpoint: string;
  stateDir: string;
  logFile: string;
  extraArgs?: string[];
  /** When the plugin counts as started, from its records; by default once it has synchronized with the runtime. */
  ready?: (records: Array<Record<string, unknown>>) => boolean;
}

const synchronized = (records: Array<Record<string, unknown>>) => records.some((record) => record.msg === "synchronized with the NRI runtime");

/** `procview nri` against a runtime's socket, ready once it has synchronized (or `options.ready` says so). */
export async function startProcviewNri(options: NriProcessOptions): Promise<ProcviewProcess> {
  const plugin = startProcview(
    ["nri", "--socket", options.socket, "--mountpoint", options.mountpoint, "--state-dir", options.stateDir, ...(options.extraArgs ?? [])],
    options.logFile,
  );
  const ready = options.ready ?? synchronized;
  await waitFor("procview nri", plugin, () => ready(plugin.records()));
  return plugin;
}

/** `procview run` (FUSE server and plugin in one process), ready once its plugin has synchronized. */
export async function startProcviewRun(options: NriProcessOptions & { replace?: boolean }): Promise<ProcviewProcess> {
  const run = startProcview(
    ["run", "--socket", options.socket, "--mountpoint", options.mountpoint, "--state-dir", options.stateDir, ...(options.replace ? ["--replace"] : []), ...(options.extraArgs ?? [])],
    options.logFile,
  );
  await waitFor("procview run", run, () => run.records().some((record) => record.msg === "synchronized with the NRI runtime"));
  return run;
}

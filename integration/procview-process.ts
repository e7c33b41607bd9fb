/**
 * procview's daemons as an operator runs them: `procview fuse` and `procview nri`
 * started through the real CLI, each with its JSON log in a file that failures quote.
 */

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { procviewMountpoints } from "../core/fuse-status.ts";

const launcher = fileURLToPath(new URL("../bin/procview.js", import.meta.url));
const readyTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

export interface ProcviewProcess {
  readonly pid: number;
  readonly logFile: string;
  /** The JSON records the process has logged so far. */
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

function startProcview(args: string[], logFile: string, runtime: string[] = [process.execPath]): ProcviewProcess {
  const logFd = openSync(logFile, "a");
  const child: ChildProcess = spawn(runtime[0], [...runtime.slice(1), launcher, ...args], { stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  if (child.pid === undefined) throw new Error(`cannot start procview ${args.join(" ")}`);
  const exited = once(child, "exit");
  const running = () => child.exitCode === null && child.signalCode === null;
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid,
    logFile,
    running,
    records: () => readRecords(logFile),
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

function readRecords(logFile: string): Array<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(logFile, "utf8");
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
  extraArgs?: string[];
}

/** `procview fuse` on private folders, ready once the kernel lists its mount. */
export async function startProcviewFuse(options: FuseProcessOptions = {}): Promise<ProcviewFuse> {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "procview-fuse-")));
  const mountpoint = join(dir, "mnt");
  const stateDir = join(dir, "state");
  // A server killed before (crash-recovery tests) leaves a dead mount here, which mkdir cannot enter: the new server replaces it.
  await mkdir(mountpoint, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOTCONN") throw err;
  });
  await mkdir(stateDir, { recursive: true });
  const server = startProcview(["fuse", "--mountpoint", mountpoint, "--state-dir", stateDir, ...(options.extraArgs ?? [])], join(dir, "fuse.log"), options.runtime);
  // Its own serving record, not only a listed mount: a dead server's mount is listed too.
  await waitFor("procview fuse", server, () => isProcviewMounted(mountpoint) && server.records().some((r) => r.msg === "FUSE server serving" && r.pid === server.pid));
  const stopServer = server.stop;
  let stopping: Promise<void> | undefined;
  return {
    ...server,
    mountpoint,
    stateDir,
    stop(signal) {
      stopping ??= (async () => {
        await stopServer(signal);
        // A server killed without its clean-up leaves a dead mount behind.
        if (isProcviewMounted(mountpoint)) execFileSync("umount", ["--lazy", mountpoint]);
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
}

/** `procview nri` against a runtime's socket, ready once it has synchronized. */
export async function startProcviewNri(options: NriProcessOptions): Promise<ProcviewProcess> {
  const plugin = startProcview(
    ["nri", "--socket", options.socket, "--mountpoint", options.mountpoint, "--state-dir", options.stateDir, ...(options.extraArgs ?? [])],
    options.logFile,
  );
  await waitFor("procview nri", plugin, () => plugin.records().some((record) => record.msg === "synchronized with the NRI runtime"));
  return plugin;
}

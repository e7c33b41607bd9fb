/**
 * Debian's LXCFS (package `lxcfs`, 5.0.3 on Debian 12) as the reference procview is
 * compared with: unpacked under `.cache/debian` with libfuse3 (debianTool), never the
 * system's copy, and run in the foreground as a child process on a private mountpoint, never
 * as the system service. A private pidfile keeps it off /run/lxcfs.pid (LXCFS locks that
 * file, so a second instance with the default would refuse to start). LXCFS itself makes
 * the empty folders /run/lxcfs/{controllers,root} on the host and mounts its cgroup
 * copies there only inside a mount namespace of its own.
 */

import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mountPointsOfType } from "../core/mountinfo.ts";
import { debianTool, type DebianTool } from "./debian-tools.ts";
import { cleanUpAtExit } from "./exit-cleanup.ts";

const readyTimeoutMs = 15_000;
const stopTimeoutMs = 10_000;

export interface Lxcfs {
  readonly pid: number;
  /** The private lxcfs executable that runs, below `.cache/debian`. */
  readonly binary: string;
  readonly mountpoint: string;
  readonly logFile: string;
  running(): boolean;
  /** SIGTERM (LXCFS unmounts itself), SIGKILL after 10 s, then a lazy unmount of whatever is left. Idempotent. */
  stop(): Promise<void>;
}

export interface LxcfsOptions {
  /** A folder for mountpoint, pidfile and log; a fresh temp folder (removed by stop()) by default. */
  dir?: string;
}
/**
 * lxcfs, and libfuse3, which a fresh Debian lacks. lxcfs loads its liblxcfs.so with
 * dlopen by name first, so LD_LIBRARY_PATH finds the private one too.
 */
function lxcfsTool(): Promise<DebianTool> {
  return debianTool({ binary: { package: "lxcfs", path: "usr/bin/lxcfs" }, needs: ["libfuse3-3"], suite: "bookworm" });
}

/** LXCFS serving on a private mountpoint, ready once the kernel lists its mount. */
export async function startLxcfs(options: LxcfsOptions = {}): Promise<Lxcfs> {
  const tool = await lxcfsTool();
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "procview-lxcfs-")));
  const mountpoint = join(dir, "mnt");
  const logFile = join(dir, "lxcfs.log");
  await mkdir(mountpoint, { recursive: true });
  const logFd = openSync(logFile, "a");
  const child = spawn(tool.binary, ["--foreground", "--pidfile", join(dir, "lxcfs.pid"), mountpoint], {
    stdio: ["ignore", logFd, logFd],
    env: tool.env,
  });
  closeSync(logFd);
  const spawnError = await Promise.race([
    once(child, "spawn").then(() => undefined),
    once(child, "error").then(([error]) => error as Error),
  ]);
  if (spawnError !== undefined) {
    if (ownsDir) await rm(dir, { recursive: true, force: true });
    throw new Error(`cannot start ${tool.binary}: ${spawnError.message}`);
  }
  const pid = child.pid!;
  // Only synchronous work can run at exit: SIGKILL cannot unmount, so unmount lazily after it.
  const forgetAtExit = cleanUpAtExit("lxcfs", () => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    if (isLxcfsMounted(mountpoint)) execFileSync("umount", ["--lazy", mountpoint]);
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
  });
  const exited = once(child, "exit");
  const running = () => child.exitCode === null && child.signalCode === null;

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (running()) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      }
      if (isLxcfsMounted(mountpoint)) execFileSync("umount", ["--lazy", mountpoint]);
      forgetAtExit();
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const deadline = Date.now() + readyTimeoutMs;
  while (!isLxcfsMounted(mountpoint)) {
    if (!running() || Date.now() > deadline) {
      const log = readFileSync(logFile, "utf8");
      await stop();
      throw new Error(`lxcfs did not mount ${mountpoint}:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { pid, binary: tool.binary, mountpoint, logFile, running, stop };
}

/** Whether an LXCFS filesystem is mounted at `mountpoint` in this mount namespace. */
export function isLxcfsMounted(mountpoint: string): boolean {
  return lxcfsMountpoints(readFileSync("/proc/self/mountinfo", "utf8")).includes(mountpoint);
}

/** Mount points of LXCFS filesystems in /proc/self/mountinfo text. */
export function lxcfsMountpoints(mountinfo: string): string[] {
  return mountPointsOfType(mountinfo, "fuse.lxcfs");
}

/**
 * A private Docker engine for integration tests: Debian bookworm's docker.io (dockerd 20.10)
 * with its containerd 1.6, runc and tini, unpacked under `.cache/debian` (debianTool), never
 * the system's engine or binaries, started by hand with every path it owns (data, exec-root,
 * its own managed containerd, socket, pidfile, trust key) in one mkdtemp directory, so it
 * never collides with the host's engine or with the containerd instances other tests run
 * on the same machine at the same time.
 *
 * Host networking is left alone: no bridge, no iptables rules, no masquerading, so
 * containers must run with network mode "none" or "host". Containers' cgroups go under a
 * private cgroup parent that stop() removes from every hierarchy.
 */

import { Buffer } from "node:buffer";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { debianTool, type DebianTool } from "./debian-tools.ts";
import { cleanUpAtExit } from "./exit-cleanup.ts";
import { cgroupHierarchyRoots, cgroupMembers, killAll, mountPointsBelow, removeCgroupTrees } from "./leftovers.ts";
import { settlesWithin, sleepSync } from "./waiting.ts";

export interface Dockerd {
  /** Path of the engine's API socket. */
  socket: string;
  /** The value for DOCKER_HOST: `unix://<socket>`. */
  dockerHost: string;
  pid: number;
  /** The private dockerd executable that runs, below `.cache/debian`. */
  binary: string;
  /** The private `docker` CLI of the same package, for tests that drive the engine by command. */
  cli: string;
  /** Where dockerd and its containerd write their logs until stop() removes it; quoted when start-up fails. */
  logFile: string;
  /**
   * Stops the engine and removes everything it left: processes, mounts, cgroups, files.
   * Safe to call more than once and after dockerd died on its own.
   */
  stop(): Promise<void>;
}

export interface DockerdOptions {
  readyTimeoutMs?: number;
  /** daemon.json's `runtimes`: extra OCI runtimes for `docker run --runtime NAME`. */
  runtimes?: DockerRuntimes;
  /** Extra environment of dockerd, which its containerd, shims and runtimes inherit. */
  env?: Record<string, string>;
}

/**
 * docker.io and what dockerd starts (containerd, its shims, runc, docker-init from tini),
 * and libdevmapper, which dockerd links against and a fresh Debian lacks. Not iptables:
 * the engine runs with --iptables=false --bridge=none.
 */
function dockerTool(): Promise<DebianTool> {
  return debianTool({
    binary: { package: "docker.io", path: "usr/sbin/dockerd" },
    needs: ["containerd", "runc", "tini", "libdevmapper1.02.1"],
    suite: "bookworm",
  });
}

export type DockerRuntimes = Record<string, { path: string; runtimeArgs?: string[] }>;

/** Paths and names of one private engine; all files live below `dir`. */
export interface DockerdLayout {
  dir: string;
  socket: string;
  configFile: string;
  dataRoot: string;
  execRoot: string;
  pidFile: string;
  trustKey: string;
  /** Relative to every cgroup hierarchy's root, e.g. `/procview-docker-ab12cd`. */
  cgroupParent: string;
}

export function dockerdLayout(dir: string): DockerdLayout {
  return {
    dir,
    socket: join(dir, "docker.sock"),
    configFile: join(dir, "daemon.json"),
    dataRoot: join(dir, "data"),
    execRoot: join(dir, "exec"),
    pidFile: join(dir, "dockerd.pid"),
    trustKey: join(dir, "key.json"),
    cgroupParent: `/procview-docker-${posix.basename(dir).replace(/[^A-Za-z0-9_-]/g, "")}`,
  };
}

/** The OCI runtime every container gets: runc named by its path, not looked up on PATH. */
export const dockerRuntime = "private-runc";

/**
 * dockerd's config file; its trust key has no command-line flag, and is written to
 * /etc/docker otherwise. docker-init (for `--init`) and runc are the private packages' by
 * path; `runtimes` adds runtimes for `docker run --runtime NAME`.
 */
export function dockerdConfig(layout: DockerdLayout, programs: { init: string; runc: string }, runtimes: DockerRuntimes = {}): string {
  return (
    JSON.stringify({
      "deprecated-key-path": layout.trustKey,
      "init-path": programs.init,
      runtimes: { [dockerRuntime]: { path: programs.runc }, ...runtimes },
      "default-runtime": dockerRuntime,
    }) + "\n"
  );
}

/** dockerd's command line for a layout. */
export function dockerdArguments(layout: DockerdLayout): string[] {
  return [
    // A private config file: /etc/docker/daemon.json must not change the test engine.
    `--config-file=${layout.configFile}`,
    `--data-root=${layout.dataRoot}`,
    `--exec-root=${layout.execRoot}`,
    `--pidfile=${layout.pidFile}`,
    `--host=unix://${layout.socket}`,
    "--bridge=none",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-masq=false",
    "--userland-proxy=false",
    "--exec-opt=native.cgroupdriver=cgroupfs",
    `--cgroup-parent=${layout.cgroupParent}`,
    // Containers a test forgot to stop should not hold up shutdown for the default 15 s.
    "--shutdown-timeout=2",
  ];
}

const defaultReadyTimeoutMs = 60_000;
/** sun_path holds 108 bytes including the NUL; containerd's deepest socket is below exec-root. */
const maxSocketPathBytes = 107;
const longestSocketName = "containerd/containerd-debug.sock";
const exitWaitMs = 30_000;

export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  const tool = await dockerTool();
  const cli = join(tool.packages.get("docker.io")!, "usr", "bin", "docker");
  const dir = await mkdtemp(join(tmpdir(), "procview-dockerd-"));
  const layout = dockerdLayout(dir);
  if (Buffer.byteLength(join(layout.execRoot, longestSocketName)) > maxSocketPathBytes) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`temp dir ${dir} is too long for dockerd's unix sockets; set TMPDIR=/tmp`);
  }
  const logFile = join(dir, "dockerd.log");
  const programs = {
    init: join(tool.packages.get("tini")!, "usr", "bin", "tini-static"),
    runc: join(tool.packages.get("runc")!, "usr", "sbin", "runc"),
  };
  await writeFile(layout.configFile, dockerdConfig(layout, programs, options.runtimes));

  const logFd = openSync(logFile, "a");
  // dockerd finds containerd and containerd-shim-runc-v2 on PATH: the private ones come first.
  const child = spawn(tool.binary, dockerdArguments(layout), { stdio: ["ignore", logFd, logFd], env: { ...tool.env, ...options.env, PATH: tool.env.PATH } });
  closeSync(logFd);

  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
  });
  const spawnFailure = once(child, "spawn").then(
    () => undefined,
    (error: unknown) => error,
  );

  const failure = await spawnFailure;
  if (failure !== undefined || child.pid === undefined) {
    cleanUp(layout);
    throw new Error(`cannot start ${tool.binary}: ${describe(failure)}`);
  }
  // A test that forgets stop() must not keep its process alive forever; its after() hook is the contract.
  child.unref();

  const stopAtExit = () => {
    if (!exited) child.kill("SIGKILL");
    cleanUp(layout);
  };
  // A test process that exits or is interrupted without its after() hooks must not leave
  // dockerd, its containers and mounts behind.
  const forgetAtExit = cleanUpAtExit("dockerd", stopAtExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        child.kill("SIGTERM");
        if (!(await settlesWithin(exit, exitWaitMs))) {
          child.kill("SIGKILL");
          await exit;
        }
      }
      cleanUp(layout);
      forgetAtExit();
    })();
    return stopping;
  };

  try {
    await waitUntilReady(layout.socket, () => exited, options.readyTimeoutMs ?? defaultReadyTimeoutMs);
  } catch (error) {
    const log = await readFile(logFile, "utf8").catch(() => "");
    await stop();
    throw new Error(`dockerd did not become ready: ${describe(error)}\n--- dockerd log (tail) ---\n${tail(log, 20)}`);
  }
  return { socket: layout.socket, dockerHost: `unix://${layout.socket}`, pid: child.pid, binary: tool.binary, cli, logFile, stop };
}

async function waitUntilReady(socket: string, hasExited: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (hasExited()) throw new Error("dockerd exited during start-up");
    if (await pings(socket)) return;
    if (Date.now() > deadline) throw new Error(`no answer on ${socket} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** GET /_ping answers "OK" once the API, the graph driver and containerd are up. */
function pings(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: "/_ping", timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

/**
 * After dockerd exited (or was killed): end what outlived it (its containerd, shims,
 * container processes), remove its cgroups, unmount what it mounted, remove its directory.
 * Synchronous, so the same steps can run in an exit handler.
 */
function cleanUp(layout: DockerdLayout): void {
  const problems: string[] = [];
  const attempt = (what: string, action: () => void) => {
    try {
      action();
    } catch (error) {
      problems.push(`${what}: ${describe(error)}`);
    }
  };
  const cgroupDirs = cgroupHierarchyRoots(readFileSync("/proc/self/mountinfo", "utf8")).map((root) =>
    posix.join(root, layout.cgroupParent),
  );
  // Container processes are exactly the members of our cgroup parent.
  attempt("processes", () => killAll([...processesNaming(layout.dir), ...cgroupMembers(cgroupDirs)]));
  attempt("cgroups", () => removeCgroups(cgroupDirs));
  attempt("mounts", () => unmountBelow(layout.dir));
  attempt("files", () => rmSync(layout.dir, { recursive: true, force: true }));
  if (problems.length > 0) throw new Error(`cleaning up dockerd in ${layout.dir} failed: ${problems.join("; ")}`);
}

/** dockerd's containerd and shims name our private directory on their command line. */
function processesNaming(dir: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && readOrEmpty(`/proc/${entry}/cmdline`).includes(dir))
    .map(Number);
}

/** A killed process leaves its cgroup a moment later: rmdir answers EBUSY until then. */
function removeCgroups(cgroupDirs: readonly string[]): void {
  let remaining = removeCgroupTrees(cgroupDirs);
  for (let tries = 0; remaining.length > 0 && tries < 50; tries++) {
    sleepSync(100);
    remaining = removeCgroupTrees(cgroupDirs);
  }
  if (remaining.length > 0) throw new Error(`busy: ${remaining.join(", ")}`);
}

function unmountBelow(dir: string): void {
  // Unmounting a parent can take its children along; re-read after each pass.
  for (let pass = 0; pass < 5; pass++) {
    const targets = mountPointsBelow(readFileSync("/proc/self/mountinfo", "utf8"), dir);
    if (targets.length === 0) return;
    for (const target of targets) {
      // Busy (a killed process still exiting): detach it now, the kernel frees it when idle.
      if (!umount([target])) umount(["--lazy", target]);
    }
  }
  const left = mountPointsBelow(readFileSync("/proc/self/mountinfo", "utf8"), dir);
  if (left.length > 0) throw new Error(`still mounted: ${left.join(", ")}`);
}

/** False when umount fails, e.g. because unmounting a parent already took this mount along. */
function umount(args: string[]): boolean {
  try {
    execFileSync("umount", args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** A process that exits between listing /proc and reading its files reads as empty. */
function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A private containerd 1.7 with NRI for integration tests: Debian trixie's containerd
 * with bookworm's runc, unpacked by debianPackage(), never installed. Everything it owns
 * (root, state, sockets, NRI socket, log, images) lives in one mkdtemp folder outside
 * /run, so processes in the host namespace (the NRI plugin, the FUSE server) reach its
 * sockets while several instances run side by side on one machine.
 *
 * containerd 1.7 puts shim sockets in /run/containerd/s whatever its config says, so it
 * runs in its own mount namespace (`unshare --mount --propagation slave`) with a fresh
 * tmpfs on /run. A holder process keeps that namespace alive, and containerd enters it
 * with nsenter, so after restart() containerd sees the same /run, shims and mounts, as it
 * would on a real host. Container mounts stay in that namespace.
 */

import { spawn, spawnSync, execFile, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { promisify } from "node:util";
import { containerdConfigToml, type ContainerdConfig } from "./containerd-config.ts";
import { connectCri, type CriClient } from "./cri.ts";
import { debianPackage } from "./debian-packages.ts";
import { cleanUpAtExit } from "./exit-cleanup.ts";
import { cgroupHierarchyRoots, cgroupMembers, isRunning, killAll, mountNamespaceMembers, mountPointsBelow, removeCgroupTrees, shimPids } from "./leftovers.ts";
import { buildTestImages } from "./oci-image.ts";
import { settlesWithin, waitUntilSync } from "./waiting.ts";

export interface ContainerdOptions {
  /** Where containerd listens for NRI plugins; `<dir>/nri.sock` by default. */
  nriSocket?: string;
  /** Pre-launched plugins containerd starts itself; an empty private folder by default. */
  nriPluginPath?: string;
  nriPluginConfigPath?: string;
  /**
   * Folders made shared mounts (bound onto themselves) before containerd's namespace is
   * made, so a mount made below them on the host later (a FUSE filesystem) reaches the
   * containers. stop() unbinds them: unmount what you mounted below them first.
   */
  sharedDirs?: string[];
  /** cgroupfs parent of the pods, e.g. "/procview-x"; unique per instance by default. */
  cgroupParent?: string;
  logLevel?: ContainerdConfig["logLevel"];
  readyTimeoutMs?: number;
  /**
   * Extra environment of containerd, which its shims and the runtimes they run inherit
   * (an operator sets it in containerd.service); PATH here goes before the system's.
   */
  env?: Record<string, string>;
  /** The CRI's runc (BinaryName), e.g. procview-runc; Debian bookworm's runc by default. */
  runcBinary?: string;
  /** The CRI's container_annotations: patterns of container annotations passed on to the runtime. */
  containerAnnotations?: string[];
}

export interface Containerd {
  /** The instance's private folder; stop() removes it. */
  readonly dir: string;
  /** containerd's `root` (content, snapshots, metadata). */
  readonly root: string;
  /** Path of the gRPC socket serving the CRI (connectCri(criAddress)). */
  readonly criAddress: string;
  readonly nriSocket: string;
  /** PID of the running containerd; a new one after restart(). */
  readonly pid: number;
  readonly images: { readonly busybox: string; readonly pause: string };
  /** Give it to runPod(): the pod and its containers land in `<hierarchy><cgroupParent>/<id>`. */
  readonly cgroupParent: string;
  readonly logFile: string;
  /** The last lines of containerd's log (thrown errors quote it too). */
  logTail(lines?: number): string;
  /** Stops containerd and starts it on the same state; pods keep running in their shims. */
  restart(): Promise<void>;
  /**
   * Removes every pod through the CRI, stops containerd, kills left-over shims and
   * container processes, unbinds sharedDirs, removes the cgroup parent from every
   * hierarchy and the private folder. Idempotent; safe in after() even if start failed.
   */
  stop(): Promise<void>;
}

const execFileAsync = promisify(execFile);
const defaultReadyTimeoutMs = 30_000;
const terminateTimeoutMs = 10_000;
const leftoverTimeoutMs = 10_000;
const pollMs = 50;
const maxSocketPathBytes = 107;
const systemPath = [process.env.PATH ?? "", "/usr/sbin:/usr/bin:/sbin:/bin"].join(":");

export async function startContainerd(options: ContainerdOptions = {}): Promise<Containerd> {
  const [containerdPackage, runcPackage] = await Promise.all([
    debianPackage("containerd", "trixie"),
    debianPackage("runc", "bookworm"),
  ]);
  const binDir = join(containerdPackage, "usr", "bin");
  const containerdBinary = join(binDir, "containerd");
  const runcBinary = join(runcPackage, "usr", "sbin", "runc");

  const dir = await mkdtemp(join(tmpdir(), "procview-containerd-"));
  const suffix = dir.slice(dir.lastIndexOf("-") + 1);
  const cgroupParent = options.cgroupParent ?? `/procview-containerd-${suffix}`;
  if (cgroupParent.split("/").includes("..")) throw new Error(`cgroup parent escapes its hierarchy: ${cgroupParent}`);
  const paths = {
    root: join(dir, "root"),
    state: join(dir, "state"),
    grpcAddress: join(dir, "containerd.sock"),
    ttrpcAddress: join(dir, "containerd.sock.ttrpc"),
    nriSocket: options.nriSocket ?? join(dir, "nri.sock"),
    configFile: join(dir, "config.toml"),
    logFile: join(dir, "containerd.log"),
  };
  for (const socket of [paths.ttrpcAddress, paths.nriSocket]) {
    if (Buffer.byteLength(socket) > maxSocketPathBytes) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`socket path too long for a unix socket (set TMPDIR=/tmp): ${socket}`);
    }
  }
  const cgroupDirs = () =>
    cgroupHierarchyRoots(readFileSync("/proc/self/mountinfo", "utf8")).map((root) => posix.join(root, cgroupParent));

  let holderPid: number | undefined;
  /**
   * containerd's mount namespace: whatever still runs in it belongs to this instance.
   * The open file pins it, so its inode number, by which members are recognised, cannot
   * pass to another instance's new namespace while we look for members.
   */
  let namespace: { id: string; fd: number } | undefined;
  const namespaceMembers = (): number[] => {
    if (namespace !== undefined) return mountNamespaceMembers(namespace.id);
    // Start-up failed before the namespace was known: the holder is all there is.
    return holderPid === undefined ? [] : [holderPid];
  };
  /** Once nothing runs in it any more: unpinned, the namespace and its mounts go away. */
  const releaseNamespace = () => {
    if (namespace !== undefined) closeSync(namespace.fd);
    namespace = undefined;
    holderPid = undefined;
  };
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let running = false;
  let cri: CriClient | undefined;
  const boundDirs: string[] = [];
  let stopping: Promise<void> | undefined;

  const logTail = (lines = 40) => {
    try {
      return readFileSync(paths.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no containerd log)";
    }
  };
  const failure = (message: string, cause?: unknown) =>
    new Error(`${message}${cause === undefined ? "" : `: ${describe(cause)}`}\n--- containerd log (${paths.logFile}, tail) ---\n${logTail()}`, {
      cause,
    });

  const startNamespaceHolder = async () => {
    const script = "mount -t tmpfs -o mode=0755 procview-run /run && exec sleep infinity";
    const logFd = openSync(paths.logFile, "a");
    const holder = spawn("unshare", ["--mount", "--propagation", "slave", "--", "sh", "-c", script], {
      stdio: ["ignore", logFd, logFd],
      env: { ...process.env, PATH: systemPath },
    });
    closeSync(logFd);
    const spawned = await once(holder, "spawn").then(() => undefined, (error: unknown) => error);
    if (spawned !== undefined || holder.pid === undefined) throw failure("cannot start unshare (util-linux)", spawned);
    // A test that never calls stop() must still be able to exit; the exit handler cleans up.
    // (Only once spawned: Deno's ChildProcess has no handle to unref after a failed spawn.)
    holder.unref();
    holderPid = holder.pid;
    const pid = holder.pid;
    await waitFor("the private /run", async () => {
      if (!isRunning(pid)) throw failure("the mount namespace holder exited");
      return mountPointsBelow(await readFile(`/proc/${pid}/mountinfo`, "utf8"), "/run").includes("/run");
    });
    const fd = openSync(`/proc/${pid}/ns/mnt`, "r");
    namespace = { id: readlinkSync(`/proc/${pid}/ns/mnt`), fd };
  };

  const spawnContainerd = async () => {
    if (holderPid === undefined || !isRunning(holderPid)) throw failure("containerd's mount namespace is gone");
    await rm(paths.grpcAddress, { force: true });
    const logFd = openSync(paths.logFile, "a");
    const process_ = spawn("nsenter", [`--mount=/proc/${holderPid}/ns/mnt`, "--", containerdBinary, "--config", paths.configFile], {
      stdio: ["ignore", logFd, logFd],
      // containerd finds containerd-shim-runc-v2 on PATH.
      env: { ...process.env, ...options.env, PATH: [binDir, options.env?.PATH, systemPath].filter(Boolean).join(":") },
    });
    closeSync(logFd);
    child = process_;
    exited = new Promise((resolve) =>
      process_.once("exit", () => {
        running = false;
        resolve();
      }),
    );
    const spawned = await once(process_, "spawn").then(() => undefined, (error: unknown) => error);
    if (spawned !== undefined) throw failure("cannot start nsenter (util-linux)", spawned);
    process_.unref();
    running = true;
    await waitFor("containerd's gRPC socket", async () => {
      if (!running) throw failure("containerd exited during start-up");
      return (await stat(paths.grpcAddress).catch(() => undefined)) !== undefined;
    });
    cri?.close();
    cri = connectCri(paths.grpcAddress);
    const client = cri;
    await waitFor("the CRI", () => client.version().then(() => true, () => false));
  };

  const waitFor = async (what: string, ready: () => Promise<boolean>) => {
    const timeoutMs = options.readyTimeoutMs ?? defaultReadyTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    while (!(await ready())) {
      if (Date.now() > deadline) throw failure(`${what} not ready within ${timeoutMs} ms`);
      await sleep(pollMs);
    }
  };

  const terminate = async () => {
    if (!running || child === undefined) return;
    child.kill("SIGTERM");
    if (!(await settlesWithin(exited, terminateTimeoutMs))) {
      child.kill("SIGKILL");
      await exited;
    }
  };

  const stop = () => {
    stopping ??= (async () => {
      const problems: string[] = [];
      const attempt = async (what: string, action: () => Promise<void>) => {
        try {
          await action();
        } catch (error) {
          problems.push(`${what}: ${describe(error)}`);
        }
      };
      const client = cri;
      if (running && client !== undefined) await attempt("removing pods through the CRI", () => client.teardown());
      client?.close();
      await attempt("stopping containerd", terminate);
      await attempt("ending left-over shims and container processes", async () => {
        const leftovers = () => [...shimPids(paths.grpcAddress), ...cgroupMembers(cgroupDirs()), ...namespaceMembers()].filter(isRunning);
        await waitUntil(leftoverTimeoutMs, () => {
          const pids = leftovers();
          killAll(pids);
          return pids.length === 0;
        }, () => `still running: ${leftovers().join(", ")}`);
        releaseNamespace();
      });
      await attempt("unbinding shared folders", async () => {
        const stuck: string[] = [];
        for (const shared of [...boundDirs].reverse()) {
          const below = mountPointsBelow(await readFile("/proc/self/mountinfo", "utf8"), shared).filter((point) => point !== shared);
          if (below.length > 0) {
            stuck.push(`${shared} stays bound: unmount ${below.join(", ")} first`);
            continue;
          }
          await execFileAsync("umount", [shared]);
          boundDirs.splice(boundDirs.lastIndexOf(shared), 1);
        }
        if (stuck.length > 0) throw new Error(stuck.join("; "));
      });
      await attempt("removing the cgroup parent", () =>
        waitUntil(leftoverTimeoutMs, () => removeCgroupTrees(cgroupDirs()).length === 0, () => `busy: ${removeCgroupTrees(cgroupDirs()).join(", ")}`),
      );
      const log = logTail();
      if (problems.length === 0) {
        await attempt("removing the private folder", () => rm(dir, { recursive: true, force: true }));
      }
      if (problems.length > 0) {
        // A later stop() (say, once the caller unmounted its FUSE filesystem) or the exit handler finishes the job.
        stopping = undefined;
        throw new Error(`stopping containerd (${dir}) left work undone:\n${problems.join("\n")}\n--- containerd log (tail) ---\n${log}`);
      }
      forgetAtExit();
    })();
    return stopping;
  };

  /** Synchronous best effort for a test process that exits without calling stop(). */
  const emergencyCleanup = () => {
    const pids = [...namespaceMembers(), ...shimPids(paths.grpcAddress), ...cgroupMembers(cgroupDirs())];
    killAll(pids);
    waitUntilSync(leftoverTimeoutMs, () => pids.every((pid) => !isRunning(pid)));
    releaseNamespace();
    for (const shared of boundDirs.reverse()) spawnSync("umount", ["--lazy", shared]);
    waitUntilSync(leftoverTimeoutMs, () => removeCgroupTrees(cgroupDirs()).length === 0);
    rmSync(dir, { recursive: true, force: true });
  };
  const forgetAtExit = cleanUpAtExit("containerd", emergencyCleanup);

  try {
    for (const sub of [paths.root, paths.state, join(dir, "opt"), join(dir, "cni", "bin"), join(dir, "cni", "conf")]) {
      await mkdir(sub, { recursive: true });
    }
    const nriPluginPath = options.nriPluginPath ?? join(dir, "nri", "plugins");
    const nriPluginConfigPath = options.nriPluginConfigPath ?? join(dir, "nri", "conf.d");
    await mkdir(nriPluginPath, { recursive: true });
    await mkdir(nriPluginConfigPath, { recursive: true });
    const images = await buildTestImages(dir);
    await writeFile(
      paths.configFile,
      containerdConfigToml({
        root: paths.root,
        state: paths.state,
        grpcAddress: paths.grpcAddress,
        ttrpcAddress: paths.ttrpcAddress,
        optDir: join(dir, "opt"),
        nriSocket: paths.nriSocket,
        nriPluginPath,
        nriPluginConfigPath,
        cniBinDir: join(dir, "cni", "bin"),
        cniConfDir: join(dir, "cni", "conf"),
        runcBinary: options.runcBinary ?? runcBinary,
        containerAnnotations: options.containerAnnotations,
        sandboxImage: images.pause,
        logLevel: options.logLevel ?? "info",
      }),
    );
    for (const shared of options.sharedDirs ?? []) {
      if (!statSync(shared).isDirectory()) throw new Error(`shared dir is not a directory: ${shared}`);
      await execFileAsync("mount", ["--bind", shared, shared]);
      boundDirs.push(shared);
      await execFileAsync("mount", ["--make-shared", shared]);
    }
    await startNamespaceHolder();
    await spawnContainerd();
    await execFileAsync(join(binDir, "ctr"), ["--address", paths.grpcAddress, "--namespace", "k8s.io", "images", "import", images.tarPath]).catch(
      (error: unknown) => {
        throw failure("ctr images import failed", error);
      },
    );
    // The CRI learns about imported images from events; RunPodSandbox would try to pull before that.
    const client = cri as CriClient;
    await waitFor("the imported images in the CRI", async () => {
      const tags = await client.listImages();
      return tags.includes(images.busybox) && tags.includes(images.pause);
    });

    return {
      dir,
      root: paths.root,
      criAddress: paths.grpcAddress,
      nriSocket: paths.nriSocket,
      get pid() {
        if (!running || child?.pid === undefined) throw new Error("containerd is not running");
        return child.pid;
      },
      images: { busybox: images.busybox, pause: images.pause },
      cgroupParent,
      logFile: paths.logFile,
      logTail,
      async restart() {
        if (stopping !== undefined) throw new Error("restart() after stop()");
        await terminate();
        await spawnContainerd();
      },
      stop,
    };
  } catch (error) {
    const startError = error instanceof Error && error.message.includes("--- containerd log") ? error : failure("containerd did not start", error);
    await stop().catch((stopError: unknown) => {
      startError.message += `\n(clean-up after the failed start: ${describe(stopError)})`;
    });
    throw startError;
  }
}


async function waitUntil(timeoutMs: number, done: () => boolean, explain: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${explain()} after ${timeoutMs} ms`);
    await sleep(pollMs);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The whole real stack for a test or the demo: a private containerd with NRI, procview's
 * FUSE server mounted where containerd's namespace sees it, and the NRI plugin, each
 * started through the CLI. stop() takes it all down in the order that leaves nothing.
 */

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startContainerd, type Containerd, type ContainerdOptions } from "./containerd.ts";
import { connectCri, type ContainerResources, type CriClient } from "./cri.ts";
import { startProcviewFuse, startProcviewNri, type ProcviewFuse, type ProcviewProcess } from "./procview-process.ts";

export interface ProcviewStack {
  readonly dir: string;
  readonly containerd: Containerd;
  readonly cri: CriClient;
  /** Replaced by startFuse() after a stop. */
  fuse: ProcviewFuse | undefined;
  /** Replaced by startPlugin() after a stop. */
  plugin: ProcviewProcess | undefined;
  startFuse(): Promise<ProcviewFuse>;
  /** `procview fuse --replace` on the running server's mountpoint; returns the server it replaced. */
  replaceFuse(): Promise<ProcviewFuse | undefined>;
  startPlugin(extraArgs?: string[]): Promise<ProcviewProcess>;
  /** A started busybox container in a pod of its own; a failure carries containerd's log tail. */
  runBusybox(name: string, options?: BusyboxOptions): Promise<string>;
  stop(): Promise<void>;
}

export interface BusyboxOptions {
  /** The pod's namespace; "procview-test" by default. */
  namespace?: string;
  /** `sleep 3600` by default. */
  command?: string[];
  /** 50 MiB of memory by default. */
  resources?: ContainerResources;
}

export interface StackOptions {
  /** Start the FUSE server and the plugin right away (default true). */
  procview?: boolean;
  /** More containerd settings (e.g. a pre-launched plugin), given the folder that will hold the mountpoint `mnt` and the state dir `state`. */
  containerd?: (shared: string) => Omit<ContainerdOptions, "sharedDirs">;
  /** The state dir (records, status files) if not `state` beside the mountpoint: a benchmark keeps it on a tmpfs, as /run is on systemd hosts. */
  stateDir?: string;
}

export async function startProcviewStack(options: StackOptions = {}): Promise<ProcviewStack> {
  const dir = await mkdtemp(join(tmpdir(), "procview-stack-"));
  // The FUSE server mounts below `shared` after containerd's namespace exists: a shared
  // mount lets that mount reach the containers (on systemd hosts / is shared anyway).
  const shared = join(dir, "shared");
  await mkdir(shared);
  const stateDir = options.stateDir ?? join(shared, "state");
  let containerd: Containerd | undefined;
  try {
    containerd = await startContainerd({ ...options.containerd?.(shared), sharedDirs: [shared] });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const stack: ProcviewStack = {
    dir,
    containerd,
    cri: connectCri(containerd.criAddress),
    fuse: undefined,
    plugin: undefined,
    async startFuse() {
      stack.fuse = await startProcviewFuse({ dir: shared, stateDir });
      return stack.fuse;
    },
    async replaceFuse() {
      const replaced = stack.fuse;
      stack.fuse = await startProcviewFuse({ dir: shared, stateDir, replace: true });
      return replaced;
    },
    async startPlugin(extraArgs = []) {
      stack.plugin = await startProcviewNri({
        socket: containerd.nriSocket,
        mountpoint: join(shared, "mnt"),
        stateDir,
        logFile: join(dir, "nri.log"),
        extraArgs,
      });
      return stack.plugin;
    },
    async runBusybox(name, { namespace = "procview-test", command = ["sleep", "3600"], resources = { memoryLimitBytes: 52428800 } } = {}) {
      try {
        const pod = await stack.cri.runPod({ name, uid: `uid-${name}`, namespace, cgroupParent: containerd.cgroupParent });
        const id = await stack.cri.createContainer(pod, { name: "busybox", image: containerd.images.busybox, command, ...resources });
        await stack.cri.startContainer(id);
        return id;
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- containerd log (tail) ---\n${containerd.logTail(30)}`, { cause: err });
      }
    },
    async stop() {
      // Pods first: their containers hold binds of the FUSE files.
      await stack.cri.teardown().catch(() => {});
      stack.cri.close();
      await stack.plugin?.stop();
      await stack.fuse?.stop();
      await containerd.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (options.procview ?? true) {
    try {
      await stack.startFuse();
      await stack.startPlugin();
    } catch (err) {
      await stack.stop();
      throw err;
    }
  }
  return stack;
}

/**
 * Bind files of this process's mount namespace into other processes' mount namespaces
 * (a running container's), replacing dead binds there: how procview heals containers
 * whose views point at a FUSE connection that died.
 *
 * The kernel refuses a plain bind whose source lives in another mount namespace, and
 * setns(CLONE_NEWNS) fails (EINVAL) in a multi-threaded process. So a dedicated worker
 * thread first unshares its fs_struct (unshare(CLONE_FS)), after which setns moves only
 * that thread; it makes a detached read-only copy of each source with
 * open_tree(OPEN_TREE_CLONE) + mount_setattr while still in our namespace, enters the
 * target namespace, and attaches the copies with move_mount. A dead bind is replaced
 * without a moment where the file underneath (the host's /proc/meminfo) shows: the new
 * mount goes *beneath* the dead one (MOVE_MOUNT_BENEATH, Linux 6.5) and the dead one is
 * then detached; on older kernels the new mount is stacked on top. The thread exits
 * afterwards, so nothing else ever runs with its changed namespace.
 */

import { Worker } from "node:worker_threads";

export interface BindRequest {
  /** The fresh file, as this process sees it (e.g. /var/lib/procview/containers/<id>/proc/meminfo). */
  source: string;
  /** Where it goes inside the target namespace (e.g. /proc/meminfo). */
  target: string;
  /**
   * replace: a dead FUSE mount sits on target and must go (one that still answers is left
   * as it is, failing with code EEXIST); attach: mount over whatever is there.
   */
  mode: "replace" | "attach";
}

export interface NamespaceJob {
  /** A process living in the target namespace. */
  pid: number;
  /** Its mount namespace as /proc/<pid>/ns/mnt reads ("mnt:[4026532712]"): checked again before entering, against pid reuse. */
  namespace: string;
  binds: BindRequest[];
}

export type BindOutcome =
  | { target: string; ok: true; how: "beneath" | "stacked" | "attached" }
  | { target: string; ok: false; error: string; code?: string };

export type JobOutcome =
  | { pid: number; namespace: string; ok: true; binds: BindOutcome[] }
  | { pid: number; namespace: string; ok: false; error: string; code?: string };

const moduleUrl = import.meta.url;
/** The worker beside this module: .ts beside the sources, .js beside the built package's modules. */
const workerUrl = new URL(`./namespace-binds-worker${moduleUrl.slice(moduleUrl.lastIndexOf("."))}`, moduleUrl);

/**
 * Runs the jobs in one worker thread, in order; it reports each job as it finishes.
 * Resolves with one outcome per job; when the worker does not finish within `timeoutMs`
 * (a path lookup hanging on an unresponsive FUSE mount), the jobs it has not reported fail.
 */
export function bindInNamespaces(jobs: NamespaceJob[], timeoutMs = 30_000): Promise<JobOutcome[]> {
  if (jobs.length === 0) return Promise.resolve([]);
  return new Promise((resolve) => {
    const worker = new Worker(workerUrl, { workerData: jobs });
    const outcomes: JobOutcome[] = [];
    let settled = false;
    const finish = (failure?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const job of jobs.slice(outcomes.length)) outcomes.push({ pid: job.pid, namespace: job.namespace, ok: false, error: failure ?? "not run" });
      resolve(outcomes);
    };
    const timer = setTimeout(() => {
      finish(`binding did not finish within ${timeoutMs} ms`);
      void worker.terminate();
    }, timeoutMs);
    worker.on("message", (outcome: JobOutcome) => {
      outcomes.push(outcome);
      if (outcomes.length === jobs.length) finish();
    });
    worker.on("error", (err) => finish(`bind worker failed: ${err.message}`));
    worker.on("exit", (code) => finish(`bind worker exited (${code}) before finishing`));
  });
}

/**
 * The worker thread of core/namespace-binds.ts. Everything here is synchronous and this
 * thread exits when done: after unshare(CLONE_FS) and setns it lives in other mount
 * namespaces, where no module may be loaded and no relative path means what it did.
 */

import { readlinkSync, statSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { BindOutcome, BindRequest, JobOutcome, NamespaceJob } from "./namespace-binds.ts";
import { SyscallError, sys, syscalls, type Syscalls } from "./syscalls.ts";

const calls = syscalls();
const viewAttributes = sys.MOUNT_ATTR_RDONLY | sys.MOUNT_ATTR_NOSUID | sys.MOUNT_ATTR_NODEV | sys.MOUNT_ATTR_NOEXEC;

function failure(err: unknown): { error: string; code?: string } {
  if (err instanceof SyscallError) return { error: err.message, code: err.code };
  const code = (err as NodeJS.ErrnoException).code;
  return { error: (err as Error).message, ...(typeof code === "string" && { code }) };
}

/** A detached read-only copy of `source`, made in the namespace the thread is in. */
function detachedCopy(source: string): number {
  const tree = calls.openTree(sys.AT_FDCWD, source, sys.OPEN_TREE_CLONE | sys.OPEN_TREE_CLOEXEC);
  try {
    calls.mountSetattr(tree, "", sys.AT_EMPTY_PATH, { set: viewAttributes });
    return tree;
  } catch (err) {
    calls.close(tree);
    throw err;
  }
}

type Attached = Extract<BindOutcome, { ok: true }>["how"];

/** A mount that answers is never replaced: it may be another server's, on a reused device number. */
class LiveMount extends Error {
  readonly code = "EEXIST";
  constructor(target: string) {
    super(`the mount on ${target} answers: left as it is`);
  }
}

/** Whether the file at `path` is on a FUSE connection that is gone (aborted: ENOTCONN, ECONNABORTED). */
function isDeadFuse(path: string): boolean {
  try {
    statSync(path);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOTCONN" || code === "ECONNABORTED";
  }
}

function attach(tree: number, bind: BindRequest): Attached {
  if (bind.mode === "attach") {
    calls.moveMount(tree, "", sys.AT_FDCWD, bind.target, sys.MOVE_MOUNT_F_EMPTY_PATH);
    return "attached";
  }
  if (!isDeadFuse(bind.target)) throw new LiveMount(bind.target);
  try {
    calls.moveMount(tree, "", sys.AT_FDCWD, bind.target, sys.MOVE_MOUNT_F_EMPTY_PATH | sys.MOVE_MOUNT_BENEATH);
  } catch (err) {
    // Kernels before 6.5 know no MOVE_MOUNT_BENEATH: stack on top; the dead mount stays underneath, unreachable.
    if (!(err instanceof SyscallError) || err.code !== "EINVAL") throw err;
    calls.moveMount(tree, "", sys.AT_FDCWD, bind.target, sys.MOVE_MOUNT_F_EMPTY_PATH);
    return "stacked";
  }
  calls.umount2(bind.target, sys.MNT_DETACH | sys.UMOUNT_NOFOLLOW);
  return "beneath";
}

function runJob(job: NamespaceJob, home: number, first: boolean): JobOutcome {
  const { pid, namespace } = job;
  let nsFd: number | undefined;
  const trees: number[] = [];
  try {
    // Sources are looked up in our own namespace.
    if (!first) calls.setns(home, sys.CLONE_NEWNS);
    nsFd = calls.open(`/proc/${pid}/ns/mnt`, sys.O_RDONLY | sys.O_CLOEXEC);
    const opened = readlinkSync(`/proc/self/fd/${nsFd}`);
    if (opened !== namespace) return { pid, namespace, ok: false, error: `process ${pid} left (its pid now names ${opened})`, code: "ESRCH" };
    // In the order of job.binds: a detached copy each, or why there is none.
    const copies = job.binds.map((bind): number | BindOutcome => {
      try {
        const tree = detachedCopy(bind.source);
        trees.push(tree);
        return tree;
      } catch (err) {
        const { error, code } = failure(err);
        return { target: bind.target, ok: false, error: `cannot copy ${bind.source}: ${error}`, ...(code !== undefined && { code }) };
      }
    });
    calls.setns(nsFd, sys.CLONE_NEWNS);
    const outcomes = job.binds.map((bind, index): BindOutcome => {
      const copy = copies[index];
      if (typeof copy !== "number") return copy;
      try {
        return { target: bind.target, ok: true, how: attach(copy, bind) };
      } catch (err) {
        return { target: bind.target, ok: false, ...failure(err) };
      }
    });
    return { pid, namespace, ok: true, binds: outcomes };
  } catch (err) {
    const { error, code } = failure(err);
    return { pid, namespace, ok: false, error, ...(code !== undefined && { code }) };
  } finally {
    for (const tree of trees) calls.close(tree);
    if (nsFd !== undefined) calls.close(nsFd);
  }
}

/** Runs every job, reporting each outcome as soon as it is known. */
function runJobs(jobs: NamespaceJob[], s: Syscalls, report: (outcome: JobOutcome) => void): void {
  let home: number | undefined;
  let started = 0;
  try {
    home = s.open("/proc/thread-self/ns/mnt", sys.O_RDONLY | sys.O_CLOEXEC);
    s.unshare(sys.CLONE_FS);
    for (const job of jobs) report(runJob(job, home, started++ === 0));
  } catch (err) {
    const { error, code } = failure(err);
    for (const job of jobs.slice(started)) report({ pid: job.pid, namespace: job.namespace, ok: false, error, ...(code !== undefined && { code }) });
  } finally {
    if (home !== undefined) s.close(home);
  }
}

runJobs(workerData as NamespaceJob[], calls, (outcome) => parentPort!.postMessage(outcome));

/**
 * Waiting on the processes a harness stops: bounded, so a stuck daemon turns into a
 * clear failure instead of a hung test run.
 */

import type { Buffer } from "node:buffer";
import type { ChildProcess } from "node:child_process";

/** Whether `promise` settles within `ms`. */
export async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Blocks the thread: only for exit-time clean-up, where nothing asynchronous runs. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Polls `done` every `pollMs`, synchronously, for at most `timeoutMs`. */
export function waitUntilSync(timeoutMs: number, done: () => boolean, pollMs = 50): void {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) sleepSync(pollMs);
}

/**
 * The first line `child` writes on stdout. Rejects, quoting what it wrote on stderr, when
 * the child exits first or stays silent for `timeoutMs`: a child that died never writes.
 */
export function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  if (child.stdout === null) return Promise.reject(new Error("the child's stdout is not a pipe"));
  let stdout = "";
  let stderr = "";
  const onStdout = (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  };
  const onStderr = (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  };
  child.stdout.on("data", onStdout);
  child.stderr?.on("data", onStderr);
  return new Promise<string>((resolve, reject) => {
    const check = () => {
      const end = stdout.indexOf("\n");
      if (end >= 0) finish(() => resolve(stdout.slice(0, end)));
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(() => reject(new Error(`the child exited (${signal ?? `code ${code}`}) before writing a line; stderr:\n${stderr}`)));
    const timer = setTimeout(
      () => finish(() => reject(new Error(`no line from the child within ${timeoutMs} ms; stderr so far:\n${stderr}`))),
      timeoutMs,
    );
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      child.stdout!.off("data", onStdout).off("data", check);
      child.stderr?.off("data", onStderr);
      child.off("close", onExit);
      settle();
    };
    child.stdout!.on("data", check);
    // "close", not "exit": it comes after the last output was read.
    child.once("close", onExit);
    check();
  });
}

/** Polls `done` every `pollMs` until it holds; throws naming `what` after `timeoutMs`. Resolves with the ms it took. */
export async function waitUntil(what: string, timeoutMs: number, done: () => boolean | Promise<boolean>, pollMs = 50): Promise<number> {
  const started = Date.now();
  while (!(await done())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return Date.now() - started;
}

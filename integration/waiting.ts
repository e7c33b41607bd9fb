/**
 * Waiting on the processes a harness stops: bounded, so a stuck daemon turns into a
 * clear failure instead of a hung test run.
 */

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

/** Polls `done` every `pollMs` until it holds; throws naming `what` after `timeoutMs`. Resolves with the ms it took. */
export async function waitUntil(what: string, timeoutMs: number, done: () => boolean | Promise<boolean>, pollMs = 50): Promise<number> {
  const started = Date.now();
  while (!(await done())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return Date.now() - started;
}

/**
 * Small waits and checks the real-mount tests share: FUSE servers log from worker threads
 * and answer in their own time, and a failing syscall is best compared by its code.
 */

import assert from "node:assert/strict";

/** Waits up to 5 s for `condition`, then asserts it. */
export async function eventually(condition: () => boolean): Promise<void> {
  for (let tries = 0; tries < 500 && !condition(); tries++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(condition(), "condition never became true");
}

/** The errno code `action` fails with, or undefined when it succeeds. */
export function errorCodeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
}

/** The errno code the promise `action` returns rejects with, or undefined. */
export async function asyncErrorCodeOf(action: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await action();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
}

import assert from "node:assert/strict";
import { existsSync, linkSync, mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { acquireLock, lockFileName, requestRelease, watchHolder, type HeldLock, type LockHolder } from "./instance-lock.ts";

const first: LockHolder = { pid: 101, name: "procview", index: "10", runtime: "/run/nri/nri.sock" };
const second: LockHolder = { ...first, pid: 202 };

async function withDir(body: (lock: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "procview-lock-"));
  try {
    await body(join(dir, lockFileName));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const noRelease = { onReleaseRequest: async () => assert.fail("nobody asked to release") };

/** What a SIGKILLed holder leaves: the lock path names a socket whose listener is gone. */
async function leaveStaleLock(lock: string): Promise<void> {
  const bound = `${lock}.dead`;
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(bound, resolve));
  linkSync(bound, lock);
  await new Promise((resolve) => server.close(resolve));
}

function heldOf(result: Awaited<ReturnType<typeof acquireLock>>): HeldLock {
  if (!("held" in result)) assert.fail(`expected to hold the lock, but ${JSON.stringify(result.heldBy)} holds it`);
  return result.held;
}

test("the first instance takes the lock; a second is told who holds it; after release the second takes it", async () => {
  await withDir(async (lock) => {
    const held = heldOf(await acquireLock(lock, first, noRelease));
    assert.deepEqual(await acquireLock(lock, second, noRelease), { heldBy: first });
    await held.release();
    assert.equal(existsSync(lock), false);
    await heldOf(await acquireLock(lock, second, noRelease)).release();
  });
});

test("a lock left by a dead holder (a socket nobody listens on) is taken over", async () => {
  await withDir(async (lock) => {
    await leaveStaleLock(lock);
    assert.equal(existsSync(lock), true);
    await heldOf(await acquireLock(lock, second, noRelease)).release();
  });
});

test("concurrent starters over a stale lock: exactly one holds it", async () => {
  await withDir(async (lock) => {
    await leaveStaleLock(lock);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => acquireLock(lock, { ...first, pid: i + 1 }, noRelease)));
    const winners = results.flatMap((result, i) => ("held" in result ? [{ pid: i + 1, held: result.held }] : []));
    assert.equal(winners.length, 1);
    for (const result of results) if ("heldBy" in result) assert.equal(result.heldBy?.pid, winners[0].pid);
    await winners[0].held.release();
  });
});

test("--replace: the holder runs its step-down, answers, and the requester takes the lock", async () => {
  await withDir(async (lock) => {
    const steps: string[] = [];
    const held = heldOf(await acquireLock(lock, first, { onReleaseRequest: async () => void steps.push("stepped down") }));
    const watcher = await watchHolder(lock);
    assert.deepEqual(watcher?.holder, first);
    const result = await requestRelease(lock, 2000);
    assert.deepEqual(result, { released: true, holder: first });
    assert.deepEqual(steps, ["stepped down"]);
    assert.equal(await held.lost, "released");
    await watcher!.gone;
    await heldOf(await acquireLock(lock, second, noRelease)).release();
  });
});

test("--replace with nobody holding the lock answers undefined; a holder that never answers times out", async () => {
  await withDir(async (lock) => {
    assert.equal(await requestRelease(lock, 500), undefined);
    // A listener that accepts and says nothing, as a stopped (SIGSTOP) holder does.
    const silent = createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(lock, resolve));
    try {
      assert.deepEqual(await requestRelease(lock, 300), { released: false, holder: undefined, reason: "no answer in 300 ms" });
      assert.deepEqual(await acquireLock(lock, second, noRelease), { heldBy: undefined });
    } finally {
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

test("a holder whose lock file is removed learns it has lost the lock", async () => {
  await withDir(async (lock) => {
    const held = heldOf(await acquireLock(lock, first, { ...noRelease, checkIntervalMs: 20 }));
    unlinkSync(lock);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const loss = await Promise.race([held.lost, new Promise((resolve) => (timer = setTimeout(resolve, 5000, "still held")))]);
    clearTimeout(timer);
    assert.equal(loss, "taken away");
  });
});

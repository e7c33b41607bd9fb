import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCommandLine } from "./args.ts";
import { startObservability, type ServerCommand } from "./observability.ts";
import { writeFuseStatus } from "../core/fuse-status.ts";
import { createLogger } from "../core/log.ts";
import { freePort } from "../integration/free-port.ts";

// A surge rollout deletes the old DaemonSet pod once the new one is ready: /readyz of
// `procview fuse` must say ready only while the state dir's fuse.json names this process.
// The real metrics server over HTTP; the "mount" is a plain folder (it answers a readdir
// as a serving mount does: a FUSE server is out of this test's reach, see the stack tests).
test("/readyz of a FUSE server is not ready while fuse.json names another process, ready once it names this one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-readyz-"));
  const mountpoint = join(dir, "mnt");
  const stateDir = join(dir, "state");
  mkdirSync(mountpoint);
  const port = await freePort();
  const command = parseCommandLine(["fuse", "--mountpoint", mountpoint, "--state-dir", stateDir, "--metrics-address", `127.0.0.1:${port}`], {}, "node");
  assert.equal(command.kind, "fuse");
  const lines: string[] = [];
  const observability = await startObservability(command as ServerCommand, createLogger({ write: (line) => lines.push(line) }));
  const readyz = async () => {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(10_000) });
    return { status: response.status, text: await response.text() };
  };
  try {
    const other = process.ppid;
    writeFuseStatus(stateDir, { pid: other, mountpoint, startedAt: Date.now() });
    assert.deepEqual(await readyz(), {
      status: 503,
      text: `not ok\nthe mount at ${mountpoint} answers\nanother process serves the mount (this one was replaced or has not taken over yet)\n`,
    });
    writeFuseStatus(stateDir, { pid: process.pid, mountpoint, startedAt: Date.now() });
    assert.deepEqual(await readyz(), { status: 200, text: `ok\nthe mount at ${mountpoint} answers\nthis process serves the mount\n` });
    // Handed over to a successor: not ready any more.
    writeFuseStatus(stateDir, { pid: other, mountpoint, startedAt: Date.now() });
    assert.equal((await readyz()).status, 503);
  } finally {
    await observability.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * containers/<id> through the real `procview fuse` process (root, /dev/fuse): the kernel
 * keeps a container's folder for a minute, and the server expires it once the record goes,
 * also when the records folder had not changed for long before (its version is trusted).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, utimesSync } from "node:fs";
import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerRegistry } from "../core/registry.ts";
import { startProcviewFuse } from "../integration/procview-process.ts";

async function errorCode(action: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await action();
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

test("a removed container's folder leaves host path walks within 2 s; the others stay", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "procview-audit-"));
  chmodSync(dir, 0o755);
  let stopServer = async (): Promise<void> => {};
  t.after(async () => {
    await stopServer();
    rmSync(dir, { recursive: true, force: true });
  });
  const registry = new ContainerRegistry(join(dir, "state"));
  for (const id of ["kept", "removed"]) registry.put({ id, cgroupPath: "/", recordedAt: Date.now() });
  // Records written long ago: the server trusts the folder's time as its version and skips rounds while it stays.
  const longAgo = new Date(Date.now() - 60_000);
  utimesSync(registry.dir, longAgo, longAgo);

  const server = await startProcviewFuse({ dir });
  stopServer = () => server.stop();
  const folder = (id: string) => join(server.mountpoint, "containers", id);
  for (const id of ["kept", "removed"]) assert.ok((await stat(join(folder(id), "proc", "meminfo"))).isFile());
  // Rounds that find the same version, before the change.
  await new Promise((resolve) => setTimeout(resolve, 600));

  registry.remove("removed");
  const deadline = Date.now() + 2000;
  while ((await errorCode(() => stat(folder("removed")))) !== "ENOENT") {
    assert.ok(Date.now() < deadline, "containers/removed still reachable 2 s after its record went (its entry is kept for a minute unless expired)");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok((await stat(folder("kept"))).isDirectory());
  assert.ok(server.records().every((record) => record.level !== "error"), "no error logged");
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../core/log.ts";
import { mountOptions, openFuseDevice, prepareMountpoint } from "./mount.ts";

const quiet = createLogger({ write: () => {} });

test("a missing FUSE device is a clear error", () => {
  assert.throws(() => openFuseDevice("/nonexistent/fuse"), /\/nonexistent\/fuse does not exist: load the fuse kernel module/);
});

test("mount options: fd 3, read-only, allow_other, nothing executable or special", () => {
  const options = mountOptions().split(",");
  for (const option of ["fd=3", "rootmode=40000", "allow_other", "default_permissions", "ro", "nosuid", "nodev", "noexec"]) assert.ok(options.includes(option), option);
});

test("the mountpoint is created and named as mountinfo will name it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-mount-test-"));
  try {
    mkdirSync(join(dir, "real"));
    symlinkSync(join(dir, "real"), join(dir, "link"));
    assert.equal(await prepareMountpoint(join(dir, "link", "a", "b"), quiet), join(dir, "real", "a", "b"));
    assert.equal(await prepareMountpoint(join(dir, "real", "a", "b") + "/", quiet), join(dir, "real", "a", "b"), "an existing directory is fine");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

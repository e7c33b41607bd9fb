import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readOptionalFile, readRequiredFile } from "./optional-file.ts";

test("reads small and large files whole, procfs included", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "procview-reader-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const large = "x".repeat(300 * 1024) + "end\n";
  writeFileSync(join(dir, "large"), large);
  writeFileSync(join(dir, "small"), "42\n");
  assert.equal(readOptionalFile(join(dir, "large")), large);
  assert.equal(readOptionalFile(join(dir, "small")), "42\n", "the grown buffer is reused without leaking old bytes");
  assert.equal(readOptionalFile(join(dir, "empty-missing")), undefined);
  assert.match(readOptionalFile("/proc/self/status") ?? "", /^Name:/);
  assert.equal(readOptionalFile("/proc/meminfo")?.split("\n")[0], readFileSync("/proc/meminfo", "latin1").split("\n")[0]);
});

test("missing files: undefined, or ENOENT when required; other errors throw", () => {
  assert.equal(readOptionalFile("/nonexistent-procview/x"), undefined);
  assert.equal(readOptionalFile("/proc/meminfo/x"), undefined, "ENOTDIR is missing too");
  assert.throws(() => readRequiredFile("/nonexistent-procview/x"), { code: "ENOENT" });
  assert.throws(() => readOptionalFile("/proc"), { code: "EISDIR" });
});

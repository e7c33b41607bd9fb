import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findRunc } from "./main.ts";

test("the real runc: PROCVIEW_RUNC, else the first runc on PATH that is not procview-runc itself", () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-findrunc-"));
  try {
    const self = join(dir, "procview-runc.js");
    writeFileSync(self, "");
    for (const sub of ["wrapper", "real"]) mkdirSync(join(dir, sub));
    // procview-runc installed under the name runc, ahead of the real one on PATH.
    symlinkSync(self, join(dir, "wrapper", "runc"));
    writeFileSync(join(dir, "real", "runc"), "");
    chmodSync(join(dir, "real", "runc"), 0o755);
    const PATH = ["relative", join(dir, "missing"), join(dir, "wrapper"), join(dir, "real")].join(":");
    assert.equal(findRunc({ PATH }, self), join(dir, "real", "runc"));
    assert.equal(findRunc({ PATH, PROCVIEW_RUNC: "/opt/runc" }, self), "/opt/runc");
    assert.throws(() => findRunc({ PATH: join(dir, "wrapper") }, self), /no runc found: set PROCVIEW_RUNC/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

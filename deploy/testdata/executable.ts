/**
 * Executables for install.sh in tests: the real single executable, built once per test
 * process into a temporary folder, and a stand-in shell script for tests of where files go.
 */

import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanUpAtExit } from "../../integration/exit-cleanup.ts";

const moduleUrl = import.meta.url;
const root = fileURLToPath(new URL("../..", moduleUrl));

let built: string | undefined;

/** dist/procview as `npm run build` makes it, built on first use (about ten seconds). */
export function builtExecutable(): string {
  if (built) return built;
  const out = mkdtempSync(join(tmpdir(), "procview-executable-"));
  cleanUpAtExit(`built procview in ${out}`, () => rmSync(out, { recursive: true, force: true }));
  const result = spawnSync(join(root, "node_modules/node/bin/node"), [join(root, "scripts/build.ts"), "--out", out], { encoding: "utf8", timeout: 300_000 });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`);
  built = join(out, "procview");
  return built;
}

/** A script that answers --version as procview does and nothing else. */
export function standInExecutable(dir: string): string {
  const path = join(dir, "procview-stand-in");
  writeFileSync(path, '#!/bin/sh\n[ "$1" = --version ] && echo "procview 0.0.0 (stand-in)"\n');
  chmodSync(path, 0o755);
  return path;
}

/**
 * bin/procview.js starts the FUSE server again, as the same process, with semi-spaces of
 * 1 MiB for its main thread, V8's gc exposed and two malloc arenas, unless the caller set
 * them. Root and /dev/fuse: it serves.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";

const launcher = fileURLToPath(new URL("./procview.js", import.meta.url));

/** The serving process's environment variable `name`, undefined if unset. */
function environmentOf(server: ProcviewFuse, name: string): string | undefined {
  const entry = readFileSync(`/proc/${server.pid}/environ`, "utf8").split("\0").find((variable) => variable.startsWith(`${name}=`));
  return entry?.slice(name.length + 1);
}

/** The serving process's command line: the pid the harness started is the one serving (its status file and records name it). */
function commandLine(server: ProcviewFuse): string[] {
  return readFileSync(`/proc/${server.pid}/cmdline`, "utf8").split("\0").filter((arg) => arg !== "");
}

test("`procview fuse` serves as the process started, with 1 MiB semi-spaces, gc exposed and two malloc arenas", async (t) => {
  const server = await startProcviewFuse();
  t.after(() => server.stop());
  const args = commandLine(server);
  assert.deepEqual(args.slice(0, 3), [process.execPath, "--max-semi-space-size=1", "--expose-gc"]);
  assert.deepEqual(args.slice(args.indexOf(launcher) + 1, args.indexOf(launcher) + 2), ["fuse"]);
  assert.equal(environmentOf(server, "MALLOC_ARENA_MAX"), "2");
});

test("a semi-space size the caller set in NODE_OPTIONS stands; gc is still exposed", async (t) => {
  const server = await startProcviewFuse({ command: ["env", "NODE_OPTIONS=--max-semi-space-size=4", process.execPath, launcher] });
  t.after(() => server.stop());
  const args = commandLine(server);
  assert.deepEqual(args.slice(0, 2), [process.execPath, "--expose-gc"]);
  assert.ok(!args.some((arg) => arg.startsWith("--max-semi-space-size")), args.join(" "));
  assert.equal(environmentOf(server, "NODE_OPTIONS"), "--max-semi-space-size=4");
  assert.equal(environmentOf(server, "MALLOC_ARENA_MAX"), "2");
});

test("flags and an arena count the caller set stand", async (t) => {
  const server = await startProcviewFuse({ command: ["env", "MALLOC_ARENA_MAX=4", process.execPath, "--expose-gc", "--max-semi-space-size=2", launcher] });
  t.after(() => server.stop());
  assert.deepEqual(commandLine(server).slice(0, 4), [process.execPath, "--expose-gc", "--max-semi-space-size=2", launcher]);
  assert.equal(environmentOf(server, "MALLOC_ARENA_MAX"), "4");
});

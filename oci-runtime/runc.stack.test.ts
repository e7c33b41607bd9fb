/**
 * procview-runc driven as a shim drives runc, without containerd.
 *
 * A foreground `run` (runc creates, starts, waits and deletes in one call) gets the views
 * and leaves no record.
 *
 * Create/delete cycles through procview-runc with the real runc (Debian bookworm's 1.1.5)
 * and the real FUSE server, as a shim makes them: `procview-runc --root … --log …
 * --log-format json create --bundle … ID`, then `delete --force ID`. No containerd: its
 * part (the shim) adds time per cycle, not behaviour procview-runc sees.
 *
 * After every create the record must exist; every 100th container is asked for its
 * MemTotal through `runc exec`; at the end no record, no runc state and no cgroup are left.
 * Four cycles run at a time, as on a busy node: runc's `delete --force` waits 100 ms for
 * the killed container, so one at a time is mostly waiting.
 * PROCVIEW_RUNC_CYCLES sets the count (default 1000); the figures are printed.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ContainerRegistry } from "../core/registry.ts";
import { cgroupHierarchyRoots } from "../integration/leftovers.ts";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";
import { prepareRuncBundles, runQuietly, type RuncBundles } from "../integration/runc-bundle.ts";
import { builtExecutable } from "../deploy/testdata/executable.ts";

const execFileAsync = promisify(execFile);
const runtime = fileURLToPath(new URL("../bin/procview-runc.js", import.meta.url));
/** dist/procview under the name procview-runc, as install.sh links it. */
function executableAsRuntime(): string {
  const link = join(dir, "procview-runc");
  if (!existsSync(link)) symlinkSync(builtExecutable(), link);
  return link;
}
const cycles = Number(process.env.PROCVIEW_RUNC_CYCLES ?? 1000);
const checkEvery = 100;
const concurrency = 4;

let dir: string;
let fuse: ProcviewFuse | undefined;
let bundles: RuncBundles | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "procview-runc-cycles-"));
  bundles = await prepareRuncBundles(dir);
  fuse = await startProcviewFuse({ dir: join(dir, "procview") });
});

after(async () => {
  await bundles?.removeLeftovers();
  await fuse?.stop();
  await rm(dir, { recursive: true, force: true });
});

test(`${cycles} create/delete cycles through procview-runc leave no record, runc state or cgroup`, { timeout: Math.max(600_000, cycles * 2_000) }, async () => {
  const { runc, root, cgroupParent, writeConfig } = bundles!;
  const registry = new ContainerRegistry(fuse!.stateDir);
  const log = join(dir, "runc.log");
  const env = { ...process.env, PROCVIEW_STATE_DIR: fuse!.stateDir, PROCVIEW_RUNC: runc, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
  const call = (args: string[]) => runQuietly(runtime, ["--root", root, "--log", log, "--log-format", "json", ...args], env);
  const logText = () => (existsSync(log) ? readFileSync(log, "utf8") : "");
  let createMs = 0;
  let deleteMs = 0;
  let next = 1;
  const started = Date.now();
  const worker = async (bundle: string) => {
    for (let cycle = next++; cycle <= cycles; cycle = next++) {
      const id = `cycle-${process.pid}-${cycle}`;
      writeConfig(bundle, id, { "procview.noderesource.dev": "enabled" });
      let at = performance.now();
      await call(["create", "--bundle", bundle, id]);
      createMs += performance.now() - at;
      assert.ok(registry.get(id), `cycle ${cycle}: recorded after create; log:\n${logText()}`);
      if (cycle % checkEvery === 0 || cycle === 1) {
        const { stdout } = await execFileAsync(runc, ["--root", root, "exec", id, "head", "-n", "1", "/proc/meminfo"], { timeout: 30_000 });
        assert.match(stdout, /^MemTotal:\s+51200 kB\n$/, `cycle ${cycle}`);
      }
      at = performance.now();
      await call(["delete", "--force", id]);
      deleteMs += performance.now() - at;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(join(dir, `bundle-${i}`))));
  const totalS = (Date.now() - started) / 1000;
  console.log(
    `procview-runc: ${cycles} create/delete cycles with runc, ${concurrency} at a time, in ${totalS.toFixed(1)} s; ` +
      `create ${(createMs / cycles).toFixed(1)} ms, delete ${(deleteMs / cycles).toFixed(1)} ms on average`,
  );
  assert.deepEqual(registry.ids(), []);
  assert.deepEqual(existsSync(root) ? readdirSync(root) : [], [], "runc's state of every container is gone");
  const containerCgroups = cgroupHierarchyRoots(readFileSync("/proc/self/mountinfo", "utf8"))
    .map((hierarchy) => posix.join(hierarchy, cgroupParent))
    .filter((parent) => existsSync(parent) && readdirSync(parent, { withFileTypes: true }).some((entry) => entry.isDirectory()));
  assert.deepEqual(containerCgroups, [], "no container cgroup is left");
  assert.equal(logText().split("\n").filter((line) => line.includes('"procview:')).join("\n"), "", "procview-runc logged nothing: every container got its views");
});

for (const [key, how, command] of [
  ["node", "the Node launcher", () => runtime],
  ["executable", "the single executable invoked as procview-runc", executableAsRuntime],
] as const) {
  test(`a foreground run through ${how}: the container reads its own MemTotal, and runc's own delete at its end takes the record along`, async () => {
    const { runc, root, writeConfig } = bundles!;
    const env = { ...process.env, PROCVIEW_STATE_DIR: fuse!.stateDir, PROCVIEW_RUNC: runc, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    const bundle = join(dir, "bundle-run");
    const id = `run-${process.pid}-${key}`;
    writeConfig(bundle, id, {}, ["head", "-n", "1", "/proc/meminfo"]);
    const { stdout } = await execFileAsync(command(), ["--root", root, "run", "--bundle", bundle, id], { env, timeout: 30_000 });
    assert.match(stdout, /^MemTotal:\s+51200 kB\n$/);
    assert.equal(new ContainerRegistry(fuse!.stateDir).get(id), undefined);
    assert.deepEqual(existsSync(root) ? readdirSync(root) : [], []);
  });
}

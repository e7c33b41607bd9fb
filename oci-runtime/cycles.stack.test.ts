/**
 * Create/delete cycles through procview-runc with the real runc (Debian bookworm's 1.1.5)
 * and the real FUSE server, as a shim makes them: `procview-runc --root … --log …
 * --log-format json create --bundle … ID`, then `delete --force ID`. No containerd: its
 * part (the shim) adds time per cycle, not behaviour procview-runc sees.
 *
 * After every create the record must exist; every 100th container is asked for its
 * MemTotal through `runc exec`; at the end no record, no runc state and no cgroup are left.
 * Four cycles run at a time, as a busy node creates containers: runc's `delete --force`
 * waits 100 ms for the killed container, so one at a time is mostly waiting.
 * PROCVIEW_RUNC_CYCLES sets the count (default 1000); the figures are printed.
 */

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ContainerRegistry } from "../core/registry.ts";
import { debianPackage } from "../integration/debian-packages.ts";
import { cgroupHierarchyRoots, cgroupMembers, killAll, removeCgroupTrees } from "../integration/leftovers.ts";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";

const execFileAsync = promisify(execFile);
const runtime = fileURLToPath(new URL("../bin/procview-runc.js", import.meta.url));
const cycles = Number(process.env.PROCVIEW_RUNC_CYCLES ?? 1000);
const checkEvery = 100;
const callTimeoutMs = 30_000;
const fiftyMiB = 52428800;
const concurrency = 4;

let dir: string;
let fuse: ProcviewFuse | undefined;
let runc: string;
let rootfs: string;
const cgroupParent = `/procview-runc-cycles-${process.pid}`;
const cgroupDirs = () => cgroupHierarchyRoots(readFileSync("/proc/self/mountinfo", "utf8")).map((root) => posix.join(root, cgroupParent));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "procview-runc-cycles-"));
  const [runcPackage, busyboxPackage] = await Promise.all([debianPackage("runc", "bookworm"), debianPackage("busybox-static", "bookworm")]);
  runc = join(runcPackage, "usr", "sbin", "runc");
  rootfs = join(dir, "rootfs");
  for (const sub of ["bin", "proc", "sys", "dev", "tmp"]) mkdirSync(join(rootfs, sub), { recursive: true });
  await copyFile(join(busyboxPackage, "bin", "busybox"), join(rootfs, "bin", "busybox"));
  chmodSync(join(rootfs, "bin", "busybox"), 0o755);
  for (const applet of ["sh", "sleep", "head"]) symlinkSync("busybox", join(rootfs, "bin", applet));
  execFileSync(runc, ["spec", "--bundle", dir]);
  fuse = await startProcviewFuse({ dir: join(dir, "procview") });
});

after(async () => {
  // Whatever a failed cycle left running.
  killAll(cgroupMembers(cgroupDirs()));
  for (const id of existsSync(join(dir, "runc-root")) ? readdirSync(join(dir, "runc-root")) : []) {
    await execFileAsync(runc, ["--root", join(dir, "runc-root"), "delete", "--force", id]).catch(() => {});
  }
  removeCgroupTrees(cgroupDirs());
  await fuse?.stop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Runs a runtime command with no stdio (with `create`, the container keeps the stdio it
 * is given, so a pipe would never close) and fails on a non-zero exit or a hang.
 */
async function runQuietly(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(file, args, { env, stdio: "ignore", timeout: callTimeoutMs });
  const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
  if (code !== 0) throw new Error(`${file} ${args.join(" ")}: exit ${code ?? signal}`);
}

/** A fresh config.json for `id` in `bundle`: procview-runc edits the bundle's copy at every create. */
function writeConfig(template: Record<string, unknown>, bundle: string, id: string): void {
  const spec = structuredClone(template) as {
    root: { path: string };
    process: { terminal: boolean; args: string[] };
    linux: { cgroupsPath?: string; resources?: Record<string, unknown> };
    annotations?: Record<string, string>;
  };
  spec.root.path = rootfs;
  spec.process.terminal = false;
  spec.process.args = ["sleep", "3600"];
  spec.linux.cgroupsPath = `${cgroupParent}/${id}`;
  spec.linux.resources = { ...spec.linux.resources, memory: { limit: fiftyMiB } };
  spec.annotations = { "procview.noderesource.dev": "enabled" };
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
}

test(`${cycles} create/delete cycles through procview-runc leave no record, runc state or cgroup`, { timeout: Math.max(600_000, cycles * 2_000) }, async () => {
  const template = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  const registry = new ContainerRegistry(fuse!.stateDir);
  const root = join(dir, "runc-root");
  const log = join(dir, "runc.log");
  const env = { ...process.env, PROCVIEW_STATE_DIR: fuse!.stateDir, PROCVIEW_RUNC: runc, PATH: `${posix.dirname(process.execPath)}:${process.env.PATH}` };
  const call = (args: string[]) => runQuietly(runtime, ["--root", root, "--log", log, "--log-format", "json", ...args], env);
  let createMs = 0;
  let deleteMs = 0;
  let next = 1;
  const started = Date.now();
  const worker = async (bundle: string) => {
    mkdirSync(bundle);
    for (let cycle = next++; cycle <= cycles; cycle = next++) {
      const id = `cycle-${process.pid}-${cycle}`;
      writeConfig(template, bundle, id);
      let at = performance.now();
      await call(["create", "--bundle", bundle, id]);
      createMs += performance.now() - at;
      assert.ok(registry.get(id), `cycle ${cycle}: recorded after create; log:\n${existsSync(log) ? readFileSync(log, "utf8") : ""}`);
      if (cycle % checkEvery === 0 || cycle === 1) {
        const { stdout } = await execFileAsync(runc, ["--root", root, "exec", id, "head", "-n", "1", "/proc/meminfo"], { timeout: callTimeoutMs });
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
  assert.deepEqual(
    cgroupDirs().filter((cgroup) => existsSync(cgroup) && readdirSync(cgroup, { withFileTypes: true }).some((entry) => entry.isDirectory())),
    [],
    "no container cgroup is left",
  );
  const warnings = existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((line) => line.includes('"procview:')) : [];
  assert.deepEqual(warnings, [], "procview-runc logged nothing: every container got its views");
});

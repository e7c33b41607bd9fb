/**
 * procview-runc on the real stack, as a user of `ctr` (or nerdctl, which is not packaged
 * for Debian) runs it: the private containerd 1.7 (integration/containerd.ts), Debian's
 * ctr and runc, `procview fuse` through its CLI, and `ctr run --runc-binary procview-runc
 * --annotation …`. No NRI plugin runs: ctr's containers never reach NRI.
 *
 * containerd passes its environment to the shims and so to procview-runc: the state dir,
 * the real runc, and a PATH whose first node is this Node (type stripping and exec).
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, renameSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ContainerRegistry } from "../core/registry.ts";
import { startContainerd, type Containerd } from "../integration/containerd.ts";
import { debianPackage } from "../integration/debian-packages.ts";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";

const execFileAsync = promisify(execFile);
const runtime = fileURLToPath(new URL("../bin/procview-runc.js", import.meta.url));
const namespace = "procview-runc";
const fiftyMiB = 52428800;
const ctrTimeoutMs = 30_000;

let dir: string;
let containerd: Containerd | undefined;
let fuse: ProcviewFuse | undefined;
let ctrBinary: string;
let registry: ContainerRegistry;
let serial = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "procview-runc-ctr-"));
  const shared = join(dir, "shared");
  await mkdir(shared);
  const [containerdPackage, runcPackage] = await Promise.all([debianPackage("containerd", "trixie"), debianPackage("runc", "bookworm")]);
  ctrBinary = join(containerdPackage, "usr", "bin", "ctr");
  containerd = await startContainerd({
    // The FUSE mount is made below `shared` after containerd's namespace exists (see integration/containerd.ts).
    sharedDirs: [shared],
    env: {
      PROCVIEW_STATE_DIR: join(shared, "state"),
      PROCVIEW_RUNC: join(runcPackage, "usr", "sbin", "runc"),
      PATH: dirname(process.execPath),
    },
  });
  fuse = await startProcviewFuse({ dir: shared });
  registry = new ContainerRegistry(fuse.stateDir);
  // ctr's images live per namespace: import the harness's image tar into ours.
  await ctr(["images", "import", join(containerd.dir, "procview-test-images.tar")]);
});

after(async () => {
  await fuse?.stop();
  await containerd?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function ctr(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(ctrBinary, ["--address", containerd!.criAddress, "--namespace", namespace, ...args], {
    timeout: ctrTimeoutMs,
  });
  return stdout;
}

/** `ctr run` of busybox under procview-runc with a 50 MiB limit, the annotations and `mode` (--rm or --detach). */
function ctrRunArgs(mode: "--rm" | "--detach", id: string, annotations: Record<string, string>, command: string[]): string[] {
  const flags = Object.entries(annotations).flatMap(([key, value]) => ["--annotation", `${key}=${value}`]);
  return [
    "run",
    mode,
    "--fifo-dir",
    join(dir, "fifo"),
    "--runc-binary",
    runtime,
    "--memory-limit",
    String(fiftyMiB),
    "--cgroup",
    `${containerd!.cgroupParent}/${id}`,
    ...flags,
    containerd!.images.busybox,
    id,
    ...command,
  ];
}

const newId = () => `runc-${process.pid}-${++serial}`;

/** `ctr run --rm`: the command's output. */
async function runOnce(annotations: Record<string, string>, command: string[]): Promise<string> {
  return await ctr(ctrRunArgs("--rm", newId(), annotations, command));
}

const hostMemTotal = () => readFileSync("/proc/meminfo", "utf8").split("\n")[0] + "\n";
const procviewMounts = (mountinfo: string) =>
  mountinfo
    .split("\n")
    .filter((line) => line.includes(" - fuse.procview "))
    .map((line) => line.split(" ")[4])
    .sort();

test("enabled: the container reads its own 50 MiB as MemTotal, and its record is gone after --rm", async () => {
  const firstLine = await runOnce({ "procview.noderesource.dev": "enabled" }, ["head", "-n", "1", "/proc/meminfo"]);
  assert.match(firstLine, /^MemTotal:\s+51200 kB\n$/);
  assert.deepEqual(registry.ids(), []);
});

test("disabled: the container reads the host's MemTotal and has no procview mount", async () => {
  const output = await runOnce({ "procview.noderesource.dev": "disabled" }, ["sh", "-c", "head -n 1 /proc/meminfo; cat /proc/self/mountinfo"]);
  const [firstLine, ...mountinfo] = output.split("\n");
  assert.equal(firstLine + "\n", hostMemTotal());
  assert.deepEqual(procviewMounts(mountinfo.join("\n")), []);
});

test("a view list binds only those views", async () => {
  const output = await runOnce({ "views.procview.noderesource.dev": "cpuinfo,loadavg" }, ["sh", "-c", "head -n 1 /proc/meminfo; cat /proc/self/mountinfo"]);
  const [firstLine, ...mountinfo] = output.split("\n");
  assert.equal(firstLine + "\n", hostMemTotal(), "meminfo was not chosen");
  assert.deepEqual(procviewMounts(mountinfo.join("\n")), ["/proc/cpuinfo", "/proc/loadavg"]);
});

test("a bad annotation value: the default (all views) and a warning in the runtime's log", async () => {
  const id = newId();
  await ctr(ctrRunArgs("--detach", id, { "procview.noderesource.dev": "maybe" }, ["sleep", "3600"]));
  try {
    assert.ok(registry.get(id), "recorded while it runs");
    const stdout = await ctr(["task", "exec", "--fifo-dir", join(dir, "fifo"), "--exec-id", "read", id, "head", "-n", "1", "/proc/meminfo"]);
    assert.match(stdout, /^MemTotal:\s+51200 kB\n$/);
    // containerd's shim gives the runtime --log <bundle>/log.json --log-format json.
    const log = readFileSync(join(containerd!.dir, "state", "io.containerd.runtime.v2.task", namespace, id, "log.json"), "utf8");
    const warnings = log
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { level: string; msg: string; time: string })
      .filter((line) => line.msg.startsWith("procview:"));
    assert.equal(warnings.length, 1, log);
    assert.equal(warnings[0].level, "warning");
    assert.match(warnings[0].msg, /procview.noderesource.dev="maybe" \(expected enabled or disabled\)/);
  } finally {
    await ctr(["task", "kill", "--signal", "SIGKILL", id]).catch(() => "");
    await ctr(["task", "delete", "--force", id]).catch(() => "");
    await ctr(["container", "delete", id]).catch(() => "");
  }
  assert.deepEqual(registry.ids(), [], "delete forgot it");
});

test("no FUSE server: the container starts without views (host's MemTotal) instead of failing", async () => {
  const status = join(fuse!.stateDir, "fuse.json");
  renameSync(status, `${status}.away`);
  try {
    const firstLine = await runOnce({ "procview.noderesource.dev": "enabled" }, ["head", "-n", "1", "/proc/meminfo"]);
    assert.equal(firstLine, hostMemTotal());
  } finally {
    renameSync(`${status}.away`, status);
  }
  assert.deepEqual(registry.ids(), []);
});

/**
 * The fuse-native backend against the real kernel: a real mount (root, /dev/fuse) of
 * procview's tree, a real memory cgroup with a limit, read through ordinary file system
 * calls and child processes. The server serves on this test's main thread, so every
 * read here is asynchronous: a synchronous one would block the thread that answers it.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { locateController, parseCgroupLayout } from "../../views/cgroup/layout.ts";
import { checkFuseLiveness, hostLivenessProbe, readFuseStatus } from "../../core/fuse-status.ts";
import { createLogger } from "../../core/log.ts";
import { ContainerRegistry } from "../../core/registry.ts";
import type { FuseServer } from "../daemon.ts";
import { isProcviewMount } from "../kernel/mount.ts";
import { startNativeFuseServer } from "./server.ts";
import { asyncErrorCodeOf, eventually } from "../kernel/testdata/expect.ts";

const run = promisify(execFile);
const here = import.meta.url;
const procviewTree = new URL("../../views/procview-tree.ts", here).href;
const startStopScript = new URL("./testdata/start-stop.ts", here).pathname;
const procviewCli = new URL("../../cli/procview.ts", here).pathname;
const MiB = 1024 * 1024;

interface Sandbox {
  dir: string;
  mountpoint: string;
  stateDir: string;
  logLines: string[];
}

function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), "procview-native-test-"));
  chmodSync(dir, 0o755); // non-root readers must reach the mount
  return { dir, mountpoint: join(dir, "mnt"), stateDir: join(dir, "state"), logLines: [] };
}

function start(box: Sandbox): Promise<FuseServer> {
  return startNativeFuseServer({
    mountpoint: box.mountpoint,
    stateDir: box.stateDir,
    treeModule: procviewTree,
    treeOptions: { stateDir: box.stateDir },
    logger: createLogger({ write: (line) => box.logLines.push(line) }),
  });
}

async function cleanup(box: Sandbox): Promise<void> {
  if (isProcviewMount(box.mountpoint)) await run("umount", ["-l", box.mountpoint]);
  rmSync(box.dir, { recursive: true, force: true });
}

/** A memory cgroup with a limit, made where this machine keeps the memory controller (v1 or v2). */
function makeMemoryCgroup(path: string, limit: number): string {
  const layout = parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
  const dir = locateController(layout, "memory", path)!.dir;
  mkdirSync(dir);
  const limitFile = existsSync(join(dir, "memory.limit_in_bytes")) ? "memory.limit_in_bytes" : "memory.max";
  writeFileSync(join(dir, limitFile), String(limit));
  return dir;
}

const memTotalOf = (meminfo: string) => Number(/^MemTotal:\s+(\d+) kB$/m.exec(meminfo)?.[1]);

describe("procview's tree mounted with fuse-native", () => {
  const box = sandbox();
  const id = `native-${process.pid}`;
  const cgroupPath = `/procview-native-test-${process.pid}-${Date.now()}`;
  const limit = 48 * MiB;
  let cgroupDir: string;
  let server: FuseServer;
  const meminfo = () => join(box.mountpoint, "containers", id, "proc", "meminfo");

  before(async () => {
    cgroupDir = makeMemoryCgroup(cgroupPath, limit);
    new ContainerRegistry(box.stateDir).put({ id, cgroupPath, recordedAt: Date.now() });
    server = await start(box);
  });

  after(async () => {
    await server?.stop();
    await cleanup(box);
    if (cgroupDir !== undefined) rmdirSync(cgroupDir);
  });

  test("the mount is a read-only fuse.procview mount the NRI plugin's liveness check accepts", async () => {
    const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((entry) => entry.split(" ")[4] === box.mountpoint);
    assert.match(line ?? "", / ro,\S* - fuse\.procview procview ro,/);
    assert.deepEqual(await checkFuseLiveness(box.mountpoint, hostLivenessProbe(box.stateDir)), {
      live: true,
      status: readFuseStatus(box.stateDir),
    });
    assert.equal(readFuseStatus(box.stateDir)?.pid, process.pid);
  });

  test("a registered container's meminfo shows its cgroup's memory limit as MemTotal", async () => {
    const text = await readFile(meminfo(), "utf8");
    assert.equal(memTotalOf(text), limit / 1024);
  });

  test("cat reads the whole file and head its first line, though the file reports size 0", async () => {
    const whole = (await run("cat", [meminfo()])).stdout;
    assert.equal(memTotalOf(whole), limit / 1024);
    assert.match(whole, /\nSwapTotal: /);
    assert.match((await run("head", ["-n", "1", meminfo()])).stdout, new RegExp(`^MemTotal: +${limit / 1024} kB\n$`));
    assert.equal((await run("stat", ["-c", "%s %a", meminfo()])).stdout, "0 444\n");
  });

  test("a non-root reader can read it too (allow_other)", async () => {
    const { stdout } = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "cat", meminfo()]);
    assert.equal(memTotalOf(stdout), limit / 1024);
  });

  test("writes fail with EROFS, whatever they try", async () => {
    assert.equal(await asyncErrorCodeOf(() => writeFile(meminfo(), "MemTotal: 1 kB\n")), "EROFS");
    assert.equal(await asyncErrorCodeOf(() => writeFile(join(box.mountpoint, "containers", id, "new"), "x")), "EROFS");
    assert.equal(await asyncErrorCodeOf(() => mkdir(join(box.mountpoint, "containers", "new"))), "EROFS");
    assert.equal(memTotalOf(await readFile(meminfo(), "utf8")), limit / 1024);
  });

  test("only containers/ is served: the reader-pid layout is absent, not someone else's numbers", async () => {
    assert.deepEqual(await readdir(box.mountpoint), ["containers"]);
    assert.deepEqual(await readdir(join(box.mountpoint, "containers")), [id]);
    assert.equal(await asyncErrorCodeOf(() => readFile(join(box.mountpoint, "proc", "meminfo"))), "ENOENT");
    assert.equal(await asyncErrorCodeOf(() => readFile(join(box.mountpoint, "containers", "not-registered", "proc", "meminfo"))), "ENOENT");
  });
});

describe("stopping and losing the fuse-native mount", () => {
  test("stop() unmounts and clears the status file; a second stop() is the same stop", async (t) => {
    const box = sandbox();
    t.after(() => cleanup(box));
    const server = await start(box);
    assert.ok(isProcviewMount(box.mountpoint));
    const stopping = server.stop();
    assert.equal(server.stop(), stopping);
    await stopping;
    assert.equal(isProcviewMount(box.mountpoint), false);
    assert.equal(readFuseStatus(box.stateDir), undefined);
  });

  test("an unmount from outside resolves closed and clears the status file", async (t) => {
    const box = sandbox();
    t.after(() => cleanup(box));
    const server = await start(box);
    let closed = false;
    void server.closed.then(() => (closed = true));
    await run("umount", [box.mountpoint]);
    await eventually(() => closed);
    assert.equal(readFuseStatus(box.stateDir), undefined);
    assert.match(box.logLines.join(""), /ended without stop\(\)/);
    await server.stop();
  });
});

describe("the fuse-native backend in a process of its own", () => {
  test("after stop() the process ends by itself: nothing of fuse-native holds its event loop", async (t) => {
    const box = sandbox();
    t.after(() => cleanup(box));
    // The timeout only turns a hang into a failure.
    const { stdout } = await run(process.execPath, [startStopScript, box.mountpoint, box.stateDir], { timeout: 60_000 });
    assert.equal(stdout, "serving\nstopped\n");
    assert.equal(isProcviewMount(box.mountpoint), false);
  });

  test("procview fuse --backend fuse-native serves registered containers, says the reader-pid layout is unavailable, stops on SIGTERM", async (t) => {
    const box = sandbox();
    t.after(() => cleanup(box));
    const cgroupPath = `/procview-native-cli-test-${process.pid}-${Date.now()}`;
    const cgroupDir = makeMemoryCgroup(cgroupPath, 40 * MiB);
    t.after(() => rmdirSync(cgroupDir));
    new ContainerRegistry(box.stateDir).put({ id: "cli-container", cgroupPath, recordedAt: Date.now() });

    const child = spawn(process.execPath, [procviewCli, "fuse", "--backend", "fuse-native", "--mountpoint", box.mountpoint, "--state-dir", box.stateDir], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = once(child, "exit");
    t.after(() => child.kill("SIGKILL"));

    await eventually(() => readFuseStatus(box.stateDir)?.pid === child.pid);
    const meminfo = await readFile(join(box.mountpoint, "containers", "cli-container", "proc", "meminfo"), "utf8");
    assert.equal(memTotalOf(meminfo), (40 * MiB) / 1024);
    assert.match(stderr, /"level":"warn","msg":"--backend fuse-native: the LXCFS-compatible reader-pid layout .* is unavailable/);

    child.kill("SIGTERM");
    assert.deepEqual(await exited, [0, null]);
    assert.equal(isProcviewMount(box.mountpoint), false);
    assert.equal(readFuseStatus(box.stateDir), undefined);
  });
});

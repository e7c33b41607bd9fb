import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { writeBusyboxBuildContext } from "./docker-image.ts";
import { dockerdArguments, dockerdConfig, dockerdLayout, dockerRuntime, startDockerd, type Dockerd } from "./docker.ts";
import { cgroupHierarchyRoots, isRunning, mountPointsBelow } from "./leftovers.ts";
import { firstLine } from "./waiting.ts";

const execFileAsync = promisify(execFile);

test("dockerd's paths, cgroup parent and trust key all stay inside its directory", () => {
  const layout = dockerdLayout("/tmp/procview-dockerd-Ab1x9Z");
  assert.equal(layout.cgroupParent, "/procview-docker-procview-dockerd-Ab1x9Z");
  const args = dockerdArguments(layout);
  for (const flag of ["--data-root", "--exec-root", "--pidfile", "--config-file"]) {
    const value = args.find((arg) => arg.startsWith(flag + "="));
    assert.ok(value?.startsWith(`${flag}=/tmp/procview-dockerd-Ab1x9Z/`), `${flag} is private: ${value}`);
  }
  assert.ok(args.includes("--host=unix:///tmp/procview-dockerd-Ab1x9Z/docker.sock"));
  assert.ok(args.includes("--bridge=none") && args.includes("--iptables=false"), "host networking untouched");
  assert.deepEqual(JSON.parse(dockerdConfig(layout, { init: "/cache/tini/usr/bin/tini-static", runc: "/cache/runc/usr/sbin/runc" })), {
    "deprecated-key-path": "/tmp/procview-dockerd-Ab1x9Z/key.json",
    "init-path": "/cache/tini/usr/bin/tini-static",
    runtimes: { [dockerRuntime]: { path: "/cache/runc/usr/sbin/runc" } },
    "default-runtime": dockerRuntime,
  });
});

// The tests below start the real Debian dockerd from .cache/debian: they need root.

/** Bounds every CLI call: a wedged engine fails the test instead of hanging it. */
const dockerCliTimeoutMs = 120_000;

async function docker(engine: Pick<Dockerd, "cli" | "dockerHost">, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(engine.cli, ["--host", engine.dockerHost, ...args], { timeout: dockerCliTimeoutMs });
  return stdout.trim();
}

/** The unpacked Debian package folder of this checkout, as the kernel names it (.cache may be a symlink). */
function cachedPackage(name: string): string {
  return realpathSync(fileURLToPath(new URL(`../.cache/debian/bookworm/${name}`, import.meta.url)));
}

/** The executable a process runs, as /proc/<pid>/exe names it. */
function executableOf(pid: number): string {
  return readlinkSync(`/proc/${pid}/exe`);
}

async function buildBusybox(engine: Pick<Dockerd, "cli" | "dockerHost">): Promise<string> {
  const context = await mkdtemp(join(tmpdir(), "procview-docker-test-"));
  try {
    await writeBusyboxBuildContext(context);
    await docker(engine, "build", "--quiet", "--tag", "busybox-test", context);
    return "busybox-test";
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/** What a stopped engine must not leave behind. */
async function assertNothingLeft(dir: string, cgroupParent: string, containerPid?: number): Promise<void> {
  assert.equal(existsSync(dir), false, `${dir} removed`);
  assert.deepEqual(mountPointsBelow(await readFile("/proc/self/mountinfo", "utf8"), dir), []);
  for (const root of cgroupHierarchyRoots(await readFile("/proc/self/mountinfo", "utf8"))) {
    assert.equal(existsSync(join(root, cgroupParent)), false, `${join(root, cgroupParent)} removed`);
  }
  const survivors: string[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(dir)) survivors.push(`${entry}: ${cmdline.replaceAll("\0", " ")}`);
  }
  assert.deepEqual(survivors, []);
  // A killed orphan may linger as a zombie until PID 1 reaps it: isRunning counts that as ended.
  if (containerPid !== undefined) assert.equal(isRunning(containerPid), false, "container process ended");
}

/** The engine's private directory, read from its socket path. */
function dirOf(engine: Pick<Dockerd, "socket">): string {
  return engine.socket.slice(0, -"/docker.sock".length);
}

test("startDockerd serves a private engine with host networking untouched, and stop() is idempotent", async () => {
  const engine = await startDockerd();
  const dir = dirOf(engine);
  try {
    const info = JSON.parse(await docker(engine, "info", "--format", "{{json .}}")) as {
      DockerRootDir: string;
      CgroupDriver: string;
    };
    assert.equal(info.DockerRootDir, join(dir, "data"));
    assert.equal(info.CgroupDriver, "cgroupfs");
    assert.deepEqual((await docker(engine, "network", "ls", "--format", "{{.Name}}")).split("\n").sort(), ["host", "none"]);
    assert.equal(existsSync(join(dir, "key.json")), true, "trust key written inside the private dir");
  } finally {
    await engine.stop();
  }
  await engine.stop();
  await assertNothingLeft(dir, dockerdLayout(dir).cgroupParent);
});

test("the engine runs the private Debian docker.io, containerd, runc and tini, whatever the system has installed", async () => {
  const engine = await startDockerd();
  const dir = dirOf(engine);
  try {
    assert.equal(realpathSync(engine.binary), join(cachedPackage("docker.io"), "usr/sbin/dockerd"));
    assert.equal(executableOf(engine.pid), realpathSync(engine.binary));
    assert.equal(realpathSync(engine.cli), join(cachedPackage("docker.io"), "usr/bin/docker"));
    const image = await buildBusybox(engine);
    const id = await docker(engine, "run", "--detach", "--init", "--network", "none", image, "sleep", "3600");
    const containerPid = Number(await docker(engine, "inspect", "--format", "{{.State.Pid}}", id));
    // The engine's own processes name its private folder: its containerd and the container's shim.
    const executables = new Set<string>();
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === engine.pid) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
      if (cmdline.includes(dir)) executables.add(executableOf(Number(entry)));
    }
    const containerd = join(cachedPackage("containerd"), "usr/bin");
    assert.deepEqual([...executables].sort(), [join(containerd, "containerd"), join(containerd, "containerd-shim-runc-v2")]);
    // --init makes docker-init the container's first process; the container names it
    // /sbin/docker-init, so the file is recognised by device and inode.
    const init = statSync(`/proc/${containerPid}/exe`);
    const privateTini = statSync(join(cachedPackage("tini"), "usr/bin/tini-static"));
    assert.deepEqual([init.dev, init.ino], [privateTini.dev, privateTini.ino], "docker-init is the private tini-static");
    // runc runs only while it creates a container: it is named by path, and the container used it.
    const info = JSON.parse(await docker(engine, "info", "--format", "{{json .}}")) as {
      DefaultRuntime: string;
      Runtimes: Record<string, { path: string }>;
    };
    assert.equal(info.DefaultRuntime, dockerRuntime);
    assert.equal(realpathSync(info.Runtimes[dockerRuntime].path), join(cachedPackage("runc"), "usr/sbin/runc"));
    assert.equal(await docker(engine, "inspect", "--format", "{{.HostConfig.Runtime}}", id), dockerRuntime);
  } finally {
    await engine.stop();
  }
  await engine.stop();
  await assertNothingLeft(dir, dockerdLayout(dir).cgroupParent);
});

test("stop() cleans up containers, shims and mounts after dockerd was killed", async () => {
  const engine = await startDockerd();
  const dir = dirOf(engine);
  let containerPid: number | undefined;
  try {
    const image = await buildBusybox(engine);
    const id = await docker(engine, "run", "--detach", "--network", "none", "--memory", "50m", image, "sleep", "3600");
    containerPid = Number(await docker(engine, "inspect", "--format", "{{.State.Pid}}", id));
    const cgroup = await readFile(`/proc/${containerPid}/cgroup`, "utf8");
    assert.match(cgroup, new RegExp(`:memory:${dockerdLayout(dir).cgroupParent}/${id}\\n`));
    // A crashed engine: its containerd, the shim and the container stay behind.
    process.kill(engine.pid, "SIGKILL");
  } finally {
    await engine.stop();
  }
  await assertNothingLeft(dir, dockerdLayout(dir).cgroupParent, containerPid);
});

test("an interrupted test process still takes its engine and containers down", async () => {
  const dockerModule = new URL("./docker.ts", import.meta.url).href;
  const script = `import { startDockerd } from ${JSON.stringify(dockerModule)};
    const engine = await startDockerd();
    console.log(JSON.stringify({ socket: engine.socket, dockerHost: engine.dockerHost, cli: engine.cli }));
    setInterval(() => {}, 1000);`;
  const testProcess = spawn(process.execPath, ["--input-type=module", "--eval", script], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = once(testProcess, "exit");
  // The child may die before it writes (dockerd failed to start): firstLine rejects then, with its stderr.
  const line = await firstLine(testProcess, 120_000).catch((error: unknown) => {
    testProcess.kill("SIGKILL");
    throw error;
  });
  const engine = JSON.parse(line) as Pick<Dockerd, "socket" | "dockerHost" | "cli">;
  const dir = dirOf(engine);

  const image = await buildBusybox(engine);
  const id = await docker(engine, "run", "--detach", "--network", "none", image, "sleep", "3600");
  const containerPid = Number(await docker(engine, "inspect", "--format", "{{.State.Pid}}", id));
  testProcess.kill("SIGTERM");
  const [code, signal] = await Promise.race([
    exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => {
        testProcess.kill("SIGKILL");
        reject(new Error("the test process did not end within 60 s of SIGTERM"));
      }, 60_000).unref(),
    ),
  ]);
  assert.equal(signal, "SIGTERM", `the signal still ends the process (exit code ${code})`);
  await assertNothingLeft(dir, dockerdLayout(dir).cgroupParent, containerPid);
});

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { promisify } from "node:util";
import { writeBusyboxBuildContext } from "./docker-image.ts";
import { dockerdArguments, dockerdConfig, dockerdLayout, startDockerd, type Dockerd } from "./docker.ts";
import { cgroupHierarchyRoots, isRunning, mountPointsBelow } from "./leftovers.ts";

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
  assert.deepEqual(JSON.parse(dockerdConfig(layout)), {
    "deprecated-key-path": "/tmp/procview-dockerd-Ab1x9Z/key.json",
  });
});

test("a missing dockerd binary gives an error that says what to install", async () => {
  await assert.rejects(startDockerd({ binary: "/nonexistent/dockerd" }), /cannot start dockerd \(install Debian's docker\.io\)/);
});

// The tests below start the real Debian dockerd: they need root and docker.io.

async function docker(engine: Dockerd, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("docker", ["--host", engine.dockerHost, ...args]);
  return stdout.trim();
}

async function buildBusybox(engine: Dockerd): Promise<string> {
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
function dirOf(engine: Dockerd): string {
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
    console.log(JSON.stringify({ socket: engine.socket, dockerHost: engine.dockerHost, pid: engine.pid }));
    setInterval(() => {}, 1000);`;
  const testProcess = spawn("node", ["--input-type=module", "--eval", script], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = once(testProcess, "exit");
  const [line] = (await once(createInterface({ input: testProcess.stdout! }), "line")) as [string];
  const engine = { ...(JSON.parse(line) as Pick<Dockerd, "socket" | "dockerHost" | "pid">), logFile: "", stop: async () => {} };
  const dir = dirOf(engine);

  const image = await buildBusybox(engine);
  const id = await docker(engine, "run", "--detach", "--network", "none", image, "sleep", "3600");
  const containerPid = Number(await docker(engine, "inspect", "--format", "{{.State.Pid}}", id));
  testProcess.kill("SIGTERM");
  const [code, signal] = await exited;
  assert.equal(signal, "SIGTERM", `the signal still ends the process (exit code ${code})`);
  await assertNothingLeft(dir, dockerdLayout(dir).cgroupParent, containerPid);
});

/**
 * What `npm run build` ships, run as an operator would, away from the checkout: the npm
 * package installed with --omit=dev into another folder and run from node_modules by Node
 * and by Deno, and the single executable dist/procview run with no Node on PATH. Each
 * serves a real FUSE mount (worker threads included) that is read back. The libc calls
 * (koffi) work in both: the executable's `fuse --replace` takes a live executable
 * server's connection over with no failed read, and after a SIGKILL the next server,
 * executable or package, heals an LXCFS-layout bind in a running mount namespace. Needs
 * root and /dev/fuse, and npm's registry (or its cache) for the package's runtime
 * dependencies.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isProcviewMounted, startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";
import { waitUntil } from "../integration/waiting.ts";
import { isRunning } from "../integration/leftovers.ts";
import { createLimitedCgroup } from "../bench/limited-cgroup.ts";
import { readFuseStatus } from "../core/fuse-status.ts";
import { freePort } from "../integration/free-port.ts";
import { version } from "../core/version.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const pinnedNode = join(root, "node_modules/node/bin/node");
const deno = join(root, "node_modules/.bin/deno");
const readyTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

let work: string;
let out: string;
let app: string;
const started: ChildProcess[] = [];

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(command, args, { encoding: "utf8", timeout: 300_000, ...options });
}

before(() => {
  work = mkdtempSync(join(tmpdir(), "procview-build-"));
  out = join(work, "dist");
  const built = run(pinnedNode, [join(root, "scripts/build.ts"), "--out", out], { cwd: root });
  assert.equal(built.status, 0, `npm run build failed:\n${built.stdout}${built.stderr}`);
  // npm pack runs the prepack build itself; the tarball is what a registry would serve.
  const packed = run("npm", ["pack", "--json", "--pack-destination", work], { cwd: root });
  assert.equal(packed.status, 0, `npm pack failed:\n${packed.stderr}`);
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as [{ filename: string }];
  app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "operator-app", private: true }));
  const installed = run("npm", ["install", "--omit=dev", "--no-audit", "--no-fund", join(work, filename)], { cwd: app });
  assert.equal(installed.status, 0, `npm install of the tarball failed:\n${installed.stdout}${installed.stderr}`);
});

after(async () => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
      await once(child, "exit");
      clearTimeout(timer);
    }
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Starts a server in the background, its output in a log file that failures quote. */
function startServer(command: string, args: string[], name: string, env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; log: string } {
  const log = join(work, `${name}.log`);
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env });
  started.push(child);
  const chunks: string[] = [];
  child.stdout!.on("data", (data) => chunks.push(String(data)));
  child.stderr!.on("data", (data) => {
    chunks.push(String(data));
    writeFileSync(log, chunks.join(""));
  });
  return { child, log };
}

async function untilMounted(mountpoint: string, server: { child: ChildProcess; log: string }): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  while (!isProcviewMounted(mountpoint)) {
    const log = existsSync(server.log) ? readFileSync(server.log, "utf8") : "";
    assert.ok(server.child.exitCode === null && Date.now() < deadline, `no procview mount at ${mountpoint}:\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopServer(server: { child: ChildProcess }, mountpoint: string): Promise<void> {
  server.child.kill("SIGTERM");
  const timer = setTimeout(() => server.child.kill("SIGKILL"), stopTimeoutMs);
  await once(server.child, "exit");
  clearTimeout(timer);
  assert.equal(isProcviewMounted(mountpoint), false, "the server unmounts when stopped");
}


test("the package holds only what runs, and installs without the dev dependencies", () => {
  const files = readdirSync(join(app, "node_modules/procview"), { recursive: true }).map(String);
  assert.ok(files.includes(join("dist", "cli", "procview.js")));
  assert.ok(files.includes(join("dist", "proto", "nri.proto")));
  assert.deepEqual(files.filter((file) => /\.test\.|testdata|\.ts$|integration|bench/.test(file)), []);
  const pkg = JSON.parse(readFileSync(join(app, "node_modules/procview/package.json"), "utf8")) as Record<string, unknown>;
  assert.equal(pkg.private, undefined);
  for (const devOnly of ["@grpc/grpc-js", "@grpc/proto-loader", "typescript", "esbuild", "testcontainers"]) {
    assert.equal(existsSync(join(app, "node_modules", devOnly)), false, `${devOnly} is installed by --omit=dev`);
  }
});

test("the installed package's procview-runc passes runc's commands through unchanged", () => {
  const args = ["--root", "/run/some root", "--log-format", "json", "state", "container-1"];
  const passed = run(pinnedNode, [join(app, "node_modules/.bin/procview-runc"), ...args], { cwd: app, env: { ...process.env, PROCVIEW_RUNC: "/bin/echo" } });
  assert.equal(passed.status, 0, passed.stderr);
  assert.equal(passed.stdout, `${args.join(" ")}\n`);
});

for (const runtime of ["node", "deno"] as const) {
  test(`the installed package runs as procview under ${runtime} and serves a FUSE mount`, async () => {
    const command = runtime === "node" ? [pinnedNode, join(app, "node_modules/.bin/procview")] : [deno, "run", "-A", join(app, "node_modules/procview/bin/procview.js")];
    const versionRun = run(command[0]!, [...command.slice(1), "--version"], { cwd: app });
    assert.equal(versionRun.status, 0, versionRun.stderr);
    assert.match(versionRun.stdout, new RegExp(`^procview ${version.replaceAll(".", "\\.")} \\(${runtime} `));

    const mountpoint = join(work, `mnt-${runtime}`);
    const stateDir = join(work, `state-${runtime}`);
    const server = startServer(command[0]!, [...command.slice(1), "fuse", "--mountpoint", mountpoint, "--state-dir", stateDir, "--workers", "2"], `fuse-${runtime}`);
    await untilMounted(mountpoint, server);
    for (let i = 0; i < 4; i++) assert.match(readFileSync(join(mountpoint, "proc/meminfo"), "utf8"), /^MemTotal: +\d+ kB\n/);
    const firstRecord = JSON.parse(readFileSync(server.log, "utf8").split("\n")[0]!) as Record<string, unknown>;
    assert.deepEqual([firstRecord.msg, firstRecord.version, firstRecord.runtime], ["procview starting", version, runtime]);
    await stopServer(server, mountpoint);
  });
}

test("dist/procview runs with no Node on PATH: version, FUSE server, metrics, status", async () => {
  const binary = join(out, "procview");
  // The host's tools the server runs (util-linux mount and umount), and no node.
  const tools = join(work, "tools");
  mkdirSync(tools);
  for (const tool of ["mount", "umount"]) symlinkSync(run("sh", ["-c", `command -v ${tool}`]).stdout.trim(), join(tools, tool));
  const noNode = { PATH: tools, HOME: "/nonexistent" };
  for (const flag of ["--version", "-V"]) {
    const result = run(binary, [flag], { env: noNode, cwd: "/" });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^procview ${version.replaceAll(".", "\\.")} \\(node `));
    // Its V8 code cache was made under the flags it runs with: V8 rejects it, with a warning, otherwise.
    assert.equal(result.stderr, "");
  }

  const mountpoint = join(work, "mnt-sea");
  const stateDir = join(work, "state-sea");
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const server = startServer(binary, ["fuse", "--mountpoint", mountpoint, "--state-dir", stateDir, "--workers", "2", "--metrics-address", address], "fuse-sea", noNode);
  await untilMounted(mountpoint, server);
  for (let i = 0; i < 6; i++) assert.match(readFileSync(join(mountpoint, "proc/meminfo"), "utf8"), /^MemTotal: +\d+ kB\n/);
  assert.match(readFileSync(join(mountpoint, "sys/devices/system/cpu/online"), "utf8"), /^\d/);
  // It started again, as the same process, with two malloc arenas (cli/executable.ts).
  assert.ok(readFileSync(`/proc/${server.child.pid}/environ`, "utf8").split("\0").includes("MALLOC_ARENA_MAX=2"));

  const get = async (path: string) => {
    const response = await fetch(`http://${address}${path}`, { signal: AbortSignal.timeout(10_000) });
    return { status: response.status, text: await response.text() };
  };
  const metrics = await get("/metrics");
  assert.equal(metrics.status, 200);
  // Six reads served by two worker threads, counted in one place.
  assert.match(metrics.text, /^procview_view_reads_total\{view="proc\/meminfo",layout="lxcfs"\} 6$/m);
  assert.match(metrics.text, /^procview_view_render_seconds_count\{view="proc\/meminfo",layout="lxcfs"\} 6$/m);
  assert.match(metrics.text, /^procview_containers 0$/m);
  assert.match(metrics.text, /^process_resident_memory_bytes \d+$/m);
  assert.equal((await get("/healthz")).status, 200);
  assert.deepEqual(await get("/readyz"), { status: 200, text: `ok\nthe mount at ${mountpoint} answers\nthis process serves the mount\n` });

  // A second server on the same metrics address stops before it mounts anything.
  const otherMount = join(work, "mnt-sea-2");
  const occupied = run(binary, ["fuse", "--mountpoint", otherMount, "--state-dir", join(work, "state-sea-2"), "--metrics-address", address], { env: noNode });
  assert.equal(occupied.status, 2);
  assert.match(occupied.stderr, new RegExp(`procview: --metrics-address ${address}: the address is already in use`));
  assert.equal(isProcviewMounted(otherMount), false);

  // FUSE server only, no plugin: status tells both and is not healthy.
  const status = run(binary, ["status", "--state-dir", stateDir], { env: noNode });
  assert.equal(status.status, 1, status.stdout);
  assert.match(status.stdout, new RegExp(`^FUSE server: pid ${server.child.pid} \\(running\\), mountpoint ${mountpoint}, answers`, "m"));
  assert.match(status.stdout, /^NRI plugin: none$/m);
  const missing = run(binary, ["status", "--state-dir", join(work, "nothing-here"), "--json"], { env: noNode });
  assert.equal(missing.status, 1);
  assert.deepEqual((JSON.parse(missing.stdout) as { problems: string[] }).problems, [`no procview running there: ${join(work, "nothing-here")} does not exist`]);

  // A hung server: status answers within its bound and exits non-zero.
  server.child.kill("SIGSTOP");
  try {
    const startedAt = Date.now();
    const hung = run(binary, ["status", "--state-dir", stateDir], { env: noNode });
    assert.ok(Date.now() - startedAt < 15_000, "status waits on a hung mount no longer than its bound");
    assert.notEqual(hung.status, 0);
    assert.match(hung.stdout, /does not answer \(no answer in 2000 ms\)/);
  } finally {
    server.child.kill("SIGCONT");
  }
  await stopServer(server, mountpoint);
});

test("dist/procview --replace takes a live dist/procview server's connection over: no read fails", async () => {
  const binary = join(out, "procview");
  const dir = mkdtempSync(join(work, "replace-"));
  const servers: ProcviewFuse[] = [];
  try {
    const old = await startProcviewFuse({ dir, command: [binary] });
    servers.push(old);
    // The handover tests' consumer: open, read whole, close, every 0.1 s, in its own process.
    const reader = spawn(process.execPath, [join(root, "fuse/handover/testdata/reader.ts"), "every-100ms", join(old.mountpoint, "proc/meminfo")], { stdio: ["pipe", "pipe", "inherit"] });
    started.push(reader);
    let output = "";
    reader.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const successor = await startProcviewFuse({ dir, replace: true, command: [binary] });
    servers.push(successor);
    await waitUntil("the old server to exit", 15_000, () => !old.running());
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    reader.stdin!.end();
    await waitUntil("the reader's summary", 30_000, () => reader.exitCode !== null);
    const summary = JSON.parse(output) as { reads: number; failures: string[] };
    assert.deepEqual(summary.failures, [], "no read failed through the handover");
    assert.ok(summary.reads >= 10, `the reader read throughout (${summary.reads} reads)`);
    assert.ok(
      successor.records().some((record) => record.msg === "took the FUSE connection over" && record.predecessor === old.pid),
      readFileSync(successor.logFile, "utf8"),
    );
    assert.equal(readFuseStatus(successor.stateDir)?.pid, successor.pid);
  } finally {
    for (const server of servers.reverse()) await server.stop();
  }
});

const limitKb = 64 * 1024;

/** A shell in its own mount namespace with `source` bound over /proc/meminfo (LXCFS's layout, as `-v` binds it), printing its first line every 50 ms. */
function startNamespaceReader(source: string): { child: ChildProcess; lines: string[] } {
  const script = `mount --bind -o ro '${source}' /proc/meminfo || exit 1; while :; do head -n 1 /proc/meminfo 2>&1 || echo FAILED; sleep 0.05; done`;
  const child = spawn("unshare", ["-m", "--propagation", "private", "sh", "-c", script], { stdio: ["ignore", "pipe", "inherit"] });
  started.push(child);
  const lines: string[] = [];
  let partial = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    const complete = (partial + chunk).split("\n");
    partial = complete.pop()!;
    lines.push(...complete);
  });
  return { child, lines };
}

const memTotalKb = (line: string | undefined): number | undefined => Number(/^MemTotal:\s+(\d+) kB$/.exec(line?.trim() ?? "")?.[1]) || undefined;

for (const shipped of ["dist/procview", "the installed package"] as const) {
  test(`SIGKILL of ${shipped}'s FUSE server, then a plain start: the bind in a running namespace reads its own MemTotal again`, async () => {
    const command = shipped === "dist/procview" ? [join(out, "procview")] : [pinnedNode, join(app, "node_modules/.bin/procview")];
    const dir = mkdtempSync(join(work, "heal-"));
    const cgroup = createLimitedCgroup("procview-build-heal", { memoryBytes: limitKb * 1024, cpus: "0", cpuQuotaUs: 50_000, cpuPeriodUs: 100_000 });
    const servers: ProcviewFuse[] = [];
    let reader: ChildProcess | undefined;
    try {
      const first = await startProcviewFuse({ dir, command });
      servers.push(first);
      const namespace = startNamespaceReader(join(first.mountpoint, "proc/meminfo"));
      reader = namespace.child;
      cgroup.addProcess(reader.pid!);
      await waitUntil("reads of the container's limit", 10_000, () => memTotalKb(namespace.lines.at(-1)) === limitKb);

      process.kill(first.pid, "SIGKILL");
      await waitUntil("the killed server to exit", 10_000, () => !isRunning(first.pid));
      const gapStart = namespace.lines.length;
      await waitUntil("failed reads in the gap", 5_000, () => namespace.lines.slice(gapStart).some((line) => line.includes("FAILED")));

      const second = await startProcviewFuse({ dir, command });
      servers.push(second);
      await waitUntil("the healed view", 15_000, () => memTotalKb(namespace.lines.at(-1)) === limitKb);
      assert.ok(
        second.records().some((record) => record.msg === "healed a container's procview views" && record.pid === reader!.pid),
        readFileSync(second.logFile, "utf8"),
      );
      // From its first read in the cgroup on: never the host's MemTotal, only the limit's or a failure.
      for (const line of namespace.lines.slice(namespace.lines.findIndex((entry) => memTotalKb(entry) === limitKb))) {
        const total = memTotalKb(line);
        assert.ok(total === undefined || total === limitKb, `a read showed another MemTotal than the limit's: ${line}`);
      }
    } finally {
      reader?.kill("SIGKILL");
      if (reader) await waitUntil("the reader to exit", 5_000, () => reader!.exitCode !== null || reader!.signalCode !== null).catch(() => {});
      for (const server of servers.reverse()) await server.stop();
      await cgroup.remove();
    }
  });
}

/**
 * `procview fuse --replace` on the real kernel (root, /dev/fuse): a live server's
 * connection taken over while real consumers read its views, in separate processes,
 * through blocking calls as `cat` and `free` do.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fusePidFile, readFuseStatus } from "../../core/fuse-status.ts";
import { ContainerRegistry } from "../../core/registry.ts";
import { startProcviewFuse, type ProcviewFuse } from "../../integration/procview-process.ts";
import { makeCgroup, removeCgroup } from "../testdata/test-cgroup.ts";
import { HandoverChannel } from "./channel.ts";
import { handoverSocketPath, handoverVersion } from "./protocol.ts";

const pinnedDeno = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url));
const deno = existsSync(pinnedDeno) ? pinnedDeno : "deno";
const readerScript = fileURLToPath(new URL("./testdata/reader.ts", import.meta.url));
const testTimeout = { timeout: 180_000 };

type ReaderMode = "every-100ms" | "hold-open" | "byte-by-byte";

interface ReaderSummary {
  reads: number;
  opens: number;
  failures: string[];
  contents: string[];
  spans: [number, number][];
  longestMs: number;
}

interface Reader {
  mode: ReaderMode;
  /** SIGKILL, for a test that failed before finish(). */
  kill(): void;
  /** Ends the reader after its current open and returns what it saw (bounded). */
  finish(): Promise<ReaderSummary>;
}

function startReader(mode: ReaderMode, file: string): Reader {
  const child: ChildProcess = spawn(process.execPath, [readerScript, mode, file], { stdio: ["pipe", "pipe", "inherit"] });
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = once(child, "exit");
  return {
    mode,
    kill: () => child.kill("SIGKILL"),
    async finish() {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
      assert.ok(output.trim(), `the ${mode} reader printed no summary (killed after 30 s?)`);
      return JSON.parse(output) as ReaderSummary;
    },
  };
}

/** The mount's id in the mount table and its device (one per FUSE connection). */
function connectionOf(mountpoint: string): { mountId: string; dev: number } {
  const line = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .find((entry) => entry.split(" ")[4] === mountpoint);
  assert.ok(line, `${mountpoint} is not mounted`);
  return { mountId: line.split(" ")[0], dev: statSync(mountpoint).dev };
}

function assertMeminfo(content: string, what: string): void {
  const lines = content.trimEnd().split("\n");
  assert.match(lines[0], /^MemTotal:\s+\d+ kB$/, `${what} starts with MemTotal`);
  for (const line of lines) assert.match(line, /^[A-Za-z0-9_()]+:\s+\d+( kB)?$/, `${what}: a whole meminfo line`);
  assert.ok(content.endsWith("\n"), `${what} ends with its last line whole`);
}

/** When a server logged `msg` (ms since the epoch). */
function logTime(server: ProcviewFuse, msg: string): number {
  const record = server.records().find((entry) => entry.msg === msg);
  assert.ok(record, `${server.pid} never logged "${msg}"`);
  return Date.parse(String(record.time));
}

async function waitUntil(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A server on the folder and a reader reading its meminfo every 0.1 s. */
async function serverWithReader(dir: string, started: Started): Promise<{ old: ProcviewFuse; reader: Reader }> {
  const old = await startProcviewFuse({ dir });
  started.servers.push(old);
  const reader = startReader("every-100ms", join(old.mountpoint, "proc", "meminfo"));
  started.readers.push(reader);
  return { old, reader };
}

interface Started {
  servers: ProcviewFuse[];
  readers: Reader[];
}

async function withFolder(body: (dir: string, started: Started) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "procview-handover-"));
  const started: Started = { servers: [], readers: [] };
  try {
    await body(dir, started);
  } finally {
    for (const reader of started.readers) reader.kill();
    // Newest first: an older server stopped first might find its mount served by a successor.
    for (const server of started.servers.reverse()) await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

describe("procview fuse --replace", () => {
  test("readers of every kind see no failed read; the old server exits, the new one serves the same connection", testTimeout, async () => {
    await withFolder(async (dir, started) => {
      const old = await startProcviewFuse({ dir });
      started.servers.push(old);
      const view = join(old.mountpoint, "proc", "meminfo");
      const before = connectionOf(old.mountpoint);
      const readers = (["every-100ms", "hold-open", "byte-by-byte"] as const).map((mode) => startReader(mode, view));
      started.readers.push(...readers);
      await new Promise((resolve) => setTimeout(resolve, 1500));

      const handoverStart = Date.now();
      const successor = await startProcviewFuse({ dir, replace: true });
      started.servers.push(successor);
      const handoverEnd = Date.now();
      await waitUntil("the old server exits", () => !old.running());
      // Readers go on against the new server for a while.
      await new Promise((resolve) => setTimeout(resolve, 3500));
      const summaries = await Promise.all(readers.map((reader) => reader.finish()));

      // From the old server's stop to the new one's first read, readers wait in the kernel.
      const stopped = logTime(old, "the successor is ready; stopping between requests");
      const serving = logTime(successor, "took the FUSE connection over");
      for (const [i, summary] of summaries.entries()) {
        const mode = readers[i].mode;
        assert.deepEqual(summary.failures, [], `${mode}: no read failed`);
        for (const content of summary.contents) assertMeminfo(content, `${mode} content`);
      }
      const every = summaries[0];
      assert.ok(every.spans.some(([, end]) => end < stopped) && every.spans.some(([start]) => start > serving), "every-100ms read whole files before and after");
      for (const mode of ["hold-open", "byte-by-byte"] as const) {
        const summary = summaries[readers.findIndex((reader) => reader.mode === mode)];
        assert.ok(
          summary.spans.some(([start, end]) => start < stopped && end > serving),
          `${mode}: one open file read across the handover (${JSON.stringify(summary.spans)}, handover ${stopped}-${serving})`,
        );
      }
      process.stdout.write(
        `# every-100ms: ${every.opens} opens, longest open-to-close ${every.longestMs} ms; ${serving - stopped} ms from the old server's stop to the new one's commit; ` +
          `${handoverEnd - handoverStart} ms from the new process's start to its serving\n`,
      );

      assert.equal(old.running(), false, "the old server is gone");
      assert.ok(old.records().some((record) => record.msg === "replaced; exiting"));
      assert.equal(readFuseStatus(old.stateDir)?.pid, successor.pid, "the status file names the new server");
      assert.equal(readFileSync(fusePidFile(old.stateDir), "utf8"), `${successor.pid}\n`, "so does the pid file (systemd's PIDFile=)");
      assert.ok(successor.records().some((record) => record.msg === "took the FUSE connection over" && record.predecessor === old.pid));
      assert.deepEqual(connectionOf(old.mountpoint), before, "the same mount, the same FUSE connection");
      assert.match(readFileSync(view, "utf8"), /^MemTotal:/);
    });
  });

  test("a second --replace, under Deno, takes over from the first successor; its stop() then unmounts", testTimeout, async () => {
    await withFolder(async (dir, started) => {
      const first = await startProcviewFuse({ dir });
      started.servers.push(first);
      const second = await startProcviewFuse({ dir, replace: true });
      started.servers.push(second);
      const third = await startProcviewFuse({ dir, replace: true, runtime: [deno, "run", "-A"] });
      started.servers.push(third);
      await waitUntil("both replaced servers exit", () => !first.running() && !second.running());
      assert.ok(third.records().some((record) => record.msg === "took the FUSE connection over" && record.predecessor === second.pid));
      assert.match(readFileSync(join(third.mountpoint, "proc", "meminfo"), "utf8"), /^MemTotal:/);
      await third.stop();
      assert.equal(connectionOfOrNone(third.mountpoint), undefined, "SIGTERM of the last server unmounts");
    });
  });

  test("--on-replaced wait: the replaced server idles without serving until SIGTERM, then exits leaving the mount to its successor", testTimeout, async () => {
    await withFolder(async (dir, started) => {
      const old = await startProcviewFuse({ dir, extraArgs: ["--on-replaced", "wait"] });
      started.servers.push(old);
      const before = connectionOf(old.mountpoint);
      const successor = await startProcviewFuse({ dir, replace: true });
      started.servers.push(successor);
      await waitUntil("the old server says it waits", () => old.records().some((record) => record.msg === "replaced; waiting for SIGTERM"));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.ok(old.running(), "a pod's container that exited would be restarted: it waits");
      await old.stop();
      assert.ok(!old.records().some((record) => record.msg === "FUSE server stopped"), "nothing of the handed-over mount was stopped");
      assert.deepEqual(connectionOf(old.mountpoint), before);
      assert.match(readFileSync(join(old.mountpoint, "proc", "meminfo"), "utf8"), /^MemTotal:/);
      assert.equal(readFuseStatus(old.stateDir)?.pid, successor.pid);
    });
  });

  test("a busy container's load averages go on across --replace instead of starting again from idle", testTimeout, async () => {
    const busy = makeCgroup(`/procview-handover-loadavg-${process.pid}-${Date.now()}`, 64 * 1024 * 1024, undefined, spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" }));
    try {
      // Throttled, the loop stays runnable (R) without taking a shared core.
      for (const cgroupDir of busy.dirs) {
        if (existsSync(join(cgroupDir, "cpu.cfs_quota_us"))) writeFileSync(join(cgroupDir, "cpu.cfs_quota_us"), "10000");
        if (existsSync(join(cgroupDir, "cpu.max"))) writeFileSync(join(cgroupDir, "cpu.max"), "10000 100000");
      }
      await withFolder(async (dir, started) => {
        new ContainerRegistry(join(dir, "state")).put({ id: "busy", cgroupPath: busy.path, recordedAt: Date.now() });
        const old = await startProcviewFuse({ dir });
        started.servers.push(old);
        const view = join(old.mountpoint, "containers", "busy", "proc", "loadavg");
        const oneMinute = () => Number(readFileSync(view, "utf8").split(" ")[0]);
        // Two 5 s samples of one runnable task take the 1-minute average from 0.00 past 0.15; a fresh table would show 0.00 or 0.08.
        await waitUntil("the busy cgroup's average passes 0.15", () => oneMinute() >= 0.15, 20_000);
        const before = oneMinute();
        const successor = await startProcviewFuse({ dir, replace: true });
        started.servers.push(successor);
        await waitUntil("the old server exits", () => !old.running());
        const after = oneMinute();
        assert.ok(after >= before, `the successor shows ${after}, the server it replaced ${before}`);
        assert.ok(successor.records().every((record) => record.level !== "error"), "no error logged by the successor");
      });
    } finally {
      await removeCgroup(busy);
    }
  });

  test("--replace with no live server on the mountpoint mounts anew, and says so", testTimeout, async () => {
    await withFolder(async (dir, started) => {
      const server = await startProcviewFuse({ dir, replace: true });
      started.servers.push(server);
      assert.ok(server.records().some((record) => String(record.msg).includes("no live procview FUSE server on the mountpoint; mounting anew")));
      assert.match(readFileSync(join(server.mountpoint, "proc", "meminfo"), "utf8"), /^MemTotal:/);
    });
  });

  test("--replace of a server that offers no handover (another state dir) fails clearly and leaves it serving", testTimeout, async () => {
    await withFolder(async (dir, started) => {
      const { old, reader } = await serverWithReader(dir, started);
      await assert.rejects(startProcviewFuse({ dir, replace: true, stateDir: join(dir, "other-state") }), /offers no handover on .*other-state\/fuse-handover\.sock/);
      const summary = await reader.finish();
      assert.deepEqual(summary.failures, []);
      assert.ok(old.running(), "the old server serves on");
      assert.equal(readFuseStatus(old.stateDir)?.pid, old.pid);
    });
  });

  test("a successor that goes away after the server stopped leaves the server serving; a later --replace still works", testTimeout, async () => {
    await withFolder(async (dir, started) => {
      const { old, reader } = await serverWithReader(dir, started);
      // This test plays a successor that fails midway: it has the server stop and send its
      // state, then goes away without committing (as a crash would).
      await waitUntil("the server listens for successors", () => existsSync(handoverSocketPath(old.stateDir)));
      const channel = await openChannel(handoverSocketPath(old.stateDir));
      await channel.send({ type: "hello", version: handoverVersion, pid: process.pid, mountpoint: old.mountpoint });
      await channel.receive("offer", 10_000);
      await channel.send({ type: "stop" });
      await channel.receive("state", 30_000);
      assert.ok((await channel.receiveBytes(30_000)).byteLength > 0);
      channel.close();
      await waitUntil("the server serves again", () => old.records().some((record) => record.msg === "handover failed; serving on" && record.resumed === true));
      assert.match(readFileSync(join(old.mountpoint, "proc", "meminfo"), "utf8"), /^MemTotal:/);

      // A successor of another protocol version is refused before anything stops.
      await waitUntil("the server listens again", () => existsSync(handoverSocketPath(old.stateDir)));
      const stranger = await openChannel(handoverSocketPath(old.stateDir));
      await stranger.send({ type: "hello", version: handoverVersion + 1, pid: process.pid, mountpoint: old.mountpoint });
      await assert.rejects(stranger.receive("offer", 10_000), /speaks handover version/);
      stranger.close();

      const summary = await reader.finish();
      assert.deepEqual(summary.failures, [], "no read failed while the server stopped and resumed");
      assert.ok(old.running());
      assert.equal(readFuseStatus(old.stateDir)?.pid, old.pid, "the status file names the server again");

      const successor = await startProcviewFuse({ dir, replace: true });
      started.servers.push(successor);
      await waitUntil("the old server exits", () => !old.running());
    });
  });

  test("SIGTERM while a successor readies itself calls the handover off: the server stops and unmounts as usual", testTimeout, async () => {
    await withFolder(async (dir, started) => {
      const old = await startProcviewFuse({ dir });
      started.servers.push(old);
      await waitUntil("the server listens for successors", () => existsSync(handoverSocketPath(old.stateDir)));
      const channel = await openChannel(handoverSocketPath(old.stateDir));
      await channel.send({ type: "hello", version: handoverVersion, pid: process.pid, mountpoint: old.mountpoint });
      await channel.receive("offer", 10_000);
      const stopAsked = Date.now();
      await old.stop();
      assert.ok(Date.now() - stopAsked < 10_000, "the stop did not wait for the successor");
      await assert.rejects(channel.receive("state", 10_000));
      channel.close();
      assert.equal(connectionOfOrNone(old.mountpoint), undefined, "unmounted");
      assert.ok(old.records().some((record) => record.msg === "FUSE server stopped"));
    });
  });
});

function connectionOfOrNone(mountpoint: string): string | undefined {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .find((entry) => entry.split(" ")[4] === mountpoint);
}

async function openChannel(path: string): Promise<HandoverChannel> {
  const socket = connect(path);
  await once(socket, "connect");
  return new HandoverChannel(socket);
}

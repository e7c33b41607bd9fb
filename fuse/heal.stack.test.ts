/**
 * Crash recovery with the LXCFS-compatible layout, for real: a process in a private mount
 * namespace and a 64 MiB cgroup has `<mount>/proc/meminfo` bound over its /proc/meminfo
 * (what `docker run -v …/proc/meminfo:/proc/meminfo:ro` does) and reads it every 50 ms.
 * `procview fuse` is SIGKILLed and started again the plain way: the same process reads
 * its own MemTotal again within 15 s, never the host's in between, and a bind that
 * cannot be healed (its container's record is gone) is logged with its id while the
 * other heals.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { createLimitedCgroup } from "../bench/limited-cgroup.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";
import { waitUntil } from "../integration/waiting.ts";
import { isRunning } from "../integration/leftovers.ts";

const limitKb = 64 * 1024;
const healWithinMs = 15_000;

function memTotalKb(line: string): number | undefined {
  const match = /^MemTotal:\s+(\d+) kB$/.exec(line.trim());
  return match ? Number(match[1]) : undefined;
}

/** A shell in its own mount namespace that binds `source` over /proc/meminfo, waits for "go", then reads it every 50 ms. */
function startReader(source: string): { child: ChildProcess; lines: string[]; ready: Promise<void> } {
  const script = `mount --bind -o ro '${source}' /proc/meminfo || exit 1; echo bound; read go; while :; do head -n 1 /proc/meminfo 2>&1 || echo FAILED; sleep 0.05; done`;
  const child = spawn("unshare", ["-m", "--propagation", "private", "sh", "-c", script], { stdio: ["pipe", "pipe", "inherit"] });
  const lines: string[] = [];
  let buffered = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the reader did not bind its view within 10 s")), 10_000);
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      const complete = buffered.split("\n");
      buffered = complete.pop()!;
      for (const line of complete) {
        if (line === "bound") {
          clearTimeout(timer);
          resolve();
        } else lines.push(line);
      }
    });
    child.on("exit", (code) => reject(new Error(`the reader exited (${code}) before binding`)));
  });
  return { child, lines, ready };
}


const pinnedDeno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
const runtimes: [string, string[] | undefined][] = [
  ["node", undefined],
  ["deno run -A", [existsSync(pinnedDeno) ? pinnedDeno : "deno", "run", "-A"]],
];

for (const [runtimeName, runtime] of runtimes) {
  test(`SIGKILL of procview fuse (${runtimeName}), then a plain start: LXCFS-layout binds in a running namespace read their own MemTotal again, never the host's`, () =>
    crashAndRestart(runtime));
}

async function crashAndRestart(runtime: string[] | undefined): Promise<void> {
  assert.equal(process.getuid?.(), 0, "needs root");
  const hostMemTotal = memTotalKb(readFileSync("/proc/meminfo", "utf8").split("\n")[0]);
  const dir = await mkdtemp(join(tmpdir(), "procview-heal-"));
  const cgroup = createLimitedCgroup("procview-heal", { memoryBytes: limitKb * 1024, cpus: "0", cpuQuotaUs: 50_000, cpuPeriodUs: 100_000 });
  const servers: ProcviewFuse[] = [];
  const readers: ChildProcess[] = [];
  try {
    const first = await startProcviewFuse({ dir, runtime });
    servers.push(first);
    // A second namespace binds a container's file whose record will be gone: it cannot be healed.
    const registry = new ContainerRegistry(first.stateDir);
    registry.put({ id: "ghost", cgroupPath: cgroup.relativePath, recordedAt: Date.now() });
    const healable = startReader(join(first.mountpoint, "proc/meminfo"));
    const ghost = startReader(join(first.mountpoint, "containers/ghost/proc/meminfo"));
    readers.push(healable.child, ghost.child);
    await Promise.all([healable.ready, ghost.ready]);
    for (const reader of readers) cgroup.addProcess(reader.pid!);
    for (const reader of readers) reader.stdin!.write("go\n");
    await waitUntil("first reads", 10_000, () => healable.lines.length >= 3 && ghost.lines.length >= 3);
    assert.equal(memTotalKb(healable.lines[0]), limitKb, `reads before the crash: ${healable.lines.slice(0, 3).join(" | ")}`);
    assert.equal(memTotalKb(ghost.lines[0]), limitKb);

    process.kill(first.pid, "SIGKILL");
    await waitUntil("the killed server to exit", 10_000, () => !isRunning(first.pid));
    registry.remove("ghost");
    const beforeGap = healable.lines.length;
    await waitUntil("failed reads in the gap", 5_000, () => healable.lines.slice(beforeGap).some((line) => line.includes("FAILED")));

    const restartedAt = Date.now();
    const second = await startProcviewFuse({ dir, runtime });
    servers.push(second);
    const healedAfter = await waitUntil("the healed view", healWithinMs, () => memTotalKb(healable.lines.at(-1) ?? "") === limitKb);
    const readsAfterCrash = healable.lines.slice(beforeGap);
    assert.ok(readsAfterCrash.length >= 5, `too few reads in the gap to tell: ${readsAfterCrash.length}`);
    for (const line of [...healable.lines, ...ghost.lines]) {
      const total = memTotalKb(line);
      assert.ok(total === undefined || total === limitKb, `a read showed MemTotal ${total} kB (host: ${hostMemTotal} kB): ${line}`);
    }
    assert.ok(readsAfterCrash.some((line) => line.includes("FAILED")), "reads in the gap failed");
    console.log(`healed ${Date.now() - restartedAt} ms after the restart began (${healedAfter} ms of polling), ${readsAfterCrash.length} reads since the kill`);

    // The bind whose record is gone is logged with its container id and why; it still fails, never the host's file.
    await waitUntil("the heal to finish", healWithinMs, () => second.records().some((r) => r.msg === "healing done"));
    const cannot = second.records().find((r) => String(r.msg).startsWith("cannot heal") && r.containerId === "ghost");
    assert.ok(cannot, `no "cannot heal" record for ghost:\n${readFileSync(second.logFile, "utf8")}`);
    assert.equal(cannot.code, "ENOENT");
    const ghostLinesNow = ghost.lines.length;
    await waitUntil("more ghost reads", 5_000, () => ghost.lines.length > ghostLinesNow + 2);
    assert.ok(ghost.lines.slice(ghostLinesNow).every((line) => line.includes("FAILED") || /Transport endpoint|Software caused/.test(line)), ghost.lines.slice(ghostLinesNow).join(" | "));
    const healed = second.records().find((r) => r.msg === "healed a container's procview views" && r.pid === healable.child.pid);
    assert.ok(healed, `no "healed" record for the reader:\n${readFileSync(second.logFile, "utf8")}`);
    // Its private copy of the mount itself is healed too.
    assert.deepEqual(healed.targets, [second.mountpoint, "/proc/meminfo"]);
    const [major, minor] = release().split(".").map(Number);
    const beneath = major > 6 || (major === 6 && minor >= 5);
    assert.equal(healed.how, beneath ? "beneath" : "stacked", "dead binds are replaced where the kernel can bind beneath them (6.5), else stacked over");
  } finally {
    for (const reader of readers) reader.kill("SIGKILL");
    await Promise.all(readers.map((reader) => waitUntil("reader exit", 5_000, () => reader.exitCode !== null || reader.signalCode !== null).catch(() => {})));
    for (const server of servers.reverse()) await server.stop();
    await cgroup.remove();
    await rm(dir, { recursive: true, force: true });
  }
}

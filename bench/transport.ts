/**
 * `node bench/transport.ts [--reads N] [--rounds R]`: what the FUSE transport alone allows.
 * A server of one fixed file (bench/transport-server.ts, no rendering) over /dev/fuse
 * read(2)/write(2), sleeping in read(2) or first looking for the next request for 50 us
 * as procview's main thread does, and over FUSE over io_uring, from one thread (looking
 * too) and from a process pinned to each CPU (sleeping: it shares the CPU with the reader
 * it answers); against LXCFS's /proc/loadavg (its cheapest view)
 * and procfs, interleaved, at 1, nproc and 8 readers. Where a reader's request is answered
 * on the CPU it runs on, no wake-up crosses CPUs. Needs root, /dev/fuse and Debian's `lxcfs`;
 * the io_uring rows a kernel with CONFIG_FUSE_IO_URING (6.14+), whose `enable_uring`
 * parameter this bench turns on while its servers connect and then sets back.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { detachFuseMountNow } from "../fuse/kernel/mount.ts";
import { measureInterleaved, startReader, stopReader, type Reader, type Target } from "./readers.ts";
import { benchCgroup, benchLxcfs, runBench, wholeNumberOptions, withCleanUp } from "./setup.ts";
import { formatThroughputTable } from "./summary.ts";

const usage = `Usage: node bench/transport.ts [--reads N] [--rounds R]
  --reads N   reads per target and reader count (default 6000)
  --rounds R  interleaved rounds (default 3)`;

const serverModule = fileURLToPath(new URL("./transport-server.ts", import.meta.url));
const uringParameter = "/sys/module/fuse/parameters/enable_uring";
const readyTimeoutMs = 30_000;

type Transport = "device" | "device-looking" | "uring-one-thread" | "uring-per-cpu";

const targetNames: Record<Transport, string> = {
  device: "/dev/fuse, sleeping",
  "device-looking": "/dev/fuse, looking first",
  "uring-one-thread": "io_uring, one thread",
  "uring-per-cpu": "io_uring, one per CPU",
};

/** A transport server on a fresh mountpoint, ready once it says so; stopped with its process group. */
async function startServer(transport: Transport, cleanUps: Array<() => Promise<void>>): Promise<{ mountpoint: string; pid: number }> {
  const dir = mkdtempSync(join(tmpdir(), "procview-transport-"));
  const mountpoint = join(dir, "mnt");
  mkdirSync(mountpoint);
  const child: ChildProcess = spawn(process.execPath, [serverModule, transport, mountpoint], { detached: true, stdio: ["ignore", "pipe", "inherit"] });
  cleanUps.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      process.kill(-child.pid!, "SIGKILL");
      await exited;
    }
    detachFuseMountNow(mountpoint);
    rmSync(dir, { recursive: true, force: true });
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve) => child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve())),
      once(child, "exit").then(([code]) => Promise.reject(new Error(`the ${transport} server exited (${code}) before it was ready`))),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the ${transport} server was not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return { mountpoint, pid: child.pid! };
}

/** Starts the servers; the io_uring ones with `enable_uring` on, which a connection keeps once it has it, so it is set back at once. */
async function startServers(cleanUps: Array<() => Promise<void>>): Promise<Map<Transport, { mountpoint: string; pid: number }>> {
  const servers = new Map<Transport, { mountpoint: string; pid: number }>();
  for (const transport of ["device", "device-looking"] as const) servers.set(transport, await startServer(transport, cleanUps));
  if (!existsSync(uringParameter)) {
    process.stdout.write(`no ${uringParameter}: this kernel has no FUSE over io_uring, so only /dev/fuse is measured\n`);
    return servers;
  }
  const before = readFileSync(uringParameter, "utf8").trim();
  writeFileSync(uringParameter, "Y");
  try {
    for (const transport of ["uring-one-thread", "uring-per-cpu"] as const) servers.set(transport, await startServer(transport, cleanUps));
  } finally {
    writeFileSync(uringParameter, before);
  }
  return servers;
}

runBench("transport", () =>
  withCleanUp(async (cleanUps) => {
    const settings = wholeNumberOptions(process.argv.slice(2), usage, { reads: 6000, rounds: 3 });
    const cgroup = benchCgroup(`procview-bench-transport-${process.pid}`, cleanUps);
    const lxcfs = await benchLxcfs(cleanUps);
    const servers = await startServers(cleanUps);
    const cpuCount = availableParallelism();
    const readerCounts = [...new Set([1, cpuCount, 8])].sort((a, b) => a - b);
    const readers: Reader[] = [];
    cleanUps.push(async () => {
      await Promise.all(readers.map(stopReader));
    });
    for (let i = 0; i < readerCounts.at(-1)!; i++) readers.push(await startReader(cgroup));

    const targets: Target[] = [
      { name: "procfs", paths: ["/proc/loadavg"] },
      { name: "lxcfs", paths: [`${lxcfs.mountpoint}/proc/loadavg`], daemonPid: lxcfs.pid },
      // The per-CPU server's CPU is spread over its processes: no daemon CPU for it.
      ...[...servers].map(([transport, server]) => ({
        name: targetNames[transport],
        paths: [`${server.mountpoint}/view`],
        daemonPid: transport === "uring-per-cpu" ? undefined : server.pid,
      })),
    ];
    await measureInterleaved(readers, targets, 200, 1);
    process.stdout.write(
      `open+read+close, ${settings.reads} reads per target and reader count, ${settings.rounds} interleaved rounds, ${cpuCount} CPUs, node ${process.version}; ` +
        `one fixed line served without rendering, against LXCFS's /proc/loadavg\n`,
    );
    for (const readerCount of readerCounts) {
      const { results } = await measureInterleaved(readers.slice(0, readerCount), targets, settings.reads, settings.rounds);
      process.stdout.write(`\n${readerCount === 1 ? "1 reader" : `${readerCount} concurrent readers (processes)`}:\n${formatThroughputTable(results, "lxcfs")}\n`);
    }
  }),
);

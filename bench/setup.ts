/**
 * What every read benchmark sets up: root check, clean-up on exit and on SIGINT/SIGTERM,
 * a cgroup limited in memory only (a CPU quota or a one-CPU set would throttle the
 * readers, not the filesystems), LXCFS and procview on private mountpoints.
 */

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { startLxcfs, type Lxcfs } from "../integration/lxcfs.ts";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";
import { createLimitedCgroup, type LimitedCgroup } from "./limited-cgroup.ts";
import { processMemory } from "./process-stats.ts";

export const memoryLimitBytes = 1024 * 1024 * 1024;

/** Runs `body` with a clean-up list that runs in reverse, also when the process is interrupted. */
export async function withCleanUp(body: (cleanUps: Array<() => Promise<void>>) => Promise<void>): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the benchmark makes cgroups and mounts: run it as root");
  const cleanUps: Array<() => Promise<void>> = [];
  const cleanUp = async () => {
    for (const step of cleanUps.splice(0).reverse()) {
      await step().catch((error: Error) => process.stderr.write(`clean-up: ${error.message}\n`));
    }
  };
  const interrupted = (signal: NodeJS.Signals) => {
    void cleanUp().finally(() => process.kill(process.pid, signal));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    await body(cleanUps);
  } finally {
    await cleanUp();
  }
}

/** A cgroup like a container's: 1 GiB of memory (8 Node readers need some 400 MB), every CPU. */
export function benchCgroup(name: string, cleanUps: Array<() => Promise<void>>): LimitedCgroup {
  const cgroup = createLimitedCgroup(name, {
    memoryBytes: memoryLimitBytes,
    cpus: readFileSync("/sys/devices/system/cpu/online", "utf8").trim(),
    cpuQuotaUs: availableParallelism() * 100_000,
    cpuPeriodUs: 100_000,
  });
  cleanUps.push(() => cgroup.remove());
  return cgroup;
}

export async function benchLxcfs(cleanUps: Array<() => Promise<void>>): Promise<Lxcfs> {
  const lxcfs = await startLxcfs();
  cleanUps.push(() => lxcfs.stop());
  return lxcfs;
}

export async function benchProcview(cleanUps: Array<() => Promise<void>>, extraArgs: string[] = []): Promise<ProcviewFuse> {
  const procview = await startProcviewFuse({ extraArgs });
  cleanUps.push(() => procview.stop());
  return procview;
}

export function describeMemory(name: string, pid: number): string {
  const memory = processMemory(pid);
  return `${name} RSS ${(memory.rssKiB / 1024).toFixed(1)} MiB (peak ${(memory.peakRssKiB / 1024).toFixed(1)} MiB)`;
}

/** --reads and --rounds (and the part's own whole-number options), checked. */
export function wholeNumberOptions<K extends string>(argv: string[], usage: string, defaults: Record<K, number>): Record<K, number> {
  const names = Object.keys(defaults) as K[];
  const { values } = parseArgs({
    args: argv,
    options: { ...Object.fromEntries(names.map((name) => [name, { type: "string" as const }])), help: { type: "boolean" as const, short: "h" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    process.exit(0);
  }
  const settings = { ...defaults };
  for (const name of names) {
    const text = (values as Record<string, unknown>)[name] as string | undefined;
    if (text === undefined) continue;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 1 || value > 10_000_000) throw new Error(`--${name} must be a whole number from 1 to 10000000, not '${text}'\n${usage}`);
    settings[name] = value;
  }
  return settings;
}

export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((error: Error) => {
    process.stderr.write(`bench ${name} failed: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  });
}

/** The server gives back its startup pages ten seconds after it started (cli/procview.ts): its file-backed MiB before and after. */
export async function startupPagesGivenBack(procview: ProcviewFuse): Promise<[number, number]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const record = procview.records().find((candidate) => candidate.msg === "startup pages given back");
    if (record !== undefined) return record.fileBackedMiB as [number, number];
    if (Date.now() > deadline) throw new Error("the server did not give its startup pages back within 30 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

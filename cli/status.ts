/**
 * `procview status`: is the procview of a state dir healthy? The FUSE server (status file,
 * pid alive, mount listed, mount answers), the NRI plugin (its status file), and each
 * recorded container: are its views bound from the live mount, from a dead one (stale:
 * the FUSE server restarted after the container started), or not at all (missing)?
 *
 * Gathering touches the host (files, mount tables, one bounded readdir of the mount);
 * judging and printing are pure, so they are unit-tested from fixtures.
 */

import { existsSync, readFileSync, writeSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { parseCgroupLayout, locateController, type CgroupLayout } from "../views/cgroup/layout.ts";
import { fuseFsType, readFuseStatus, type FuseStatus } from "../core/fuse-status.ts";
import { readPluginStatus, type PluginStatus } from "../core/plugin-status.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { unescapeMountinfo } from "../core/mountinfo.ts";

/** Where the plugin binds views inside a container (the targets of its mounts). */
const viewTargets = [
  "/proc/meminfo",
  "/proc/cpuinfo",
  "/proc/stat",
  "/proc/uptime",
  "/proc/diskstats",
  "/proc/swaps",
  "/proc/loadavg",
  "/sys/devices/system/cpu/online",
];

export type BindState = "served" | "stale" | "missing" | "exited";

export interface ContainerStatus {
  id: string;
  name?: string;
  pod?: string;
  /** served: bound from the live mount; stale: from a procview mount that is gone; missing: no view bound; exited: no process left. */
  binds: BindState;
}

export interface FuseReport {
  pid: number;
  mountpoint: string;
  startedAt: number;
  alive: boolean;
  mounted: boolean;
  answers: boolean;
  /** Why it does not answer (timeout, errno). */
  error?: string;
}

export interface StatusReport {
  stateDir: string;
  /** False when the state dir does not exist: nothing of procview ran there. */
  exists: boolean;
  fuse?: FuseReport;
  plugin?: PluginStatus & { alive: boolean };
  containers: ContainerStatus[];
}

export interface StatusHost {
  exists(path: string): boolean;
  readFuseStatus(stateDir: string): FuseStatus | undefined;
  readPluginStatus(stateDir: string): PluginStatus | undefined;
  isAlive(pid: number): boolean;
  /** mountinfo of the process `pid`, or this one's ("self"). */
  mountinfo(pid: number | "self"): string | undefined;
  /** Resolves true if a readdir of the mount answers within the timeout. */
  mountAnswers(mountpoint: string): Promise<{ answers: boolean; error?: string }>;
  /** A pid in the cgroup of a recorded container, or undefined when it has none left. */
  pidOf(cgroupPath: string): number | undefined;
  records(stateDir: string): { id: string; cgroupPath: string; name?: string; pod?: { name?: string; namespace?: string } }[];
}

/** Devices (major:minor) of the procview FUSE mounts in a mountinfo text, by mount point. */
export function procviewMountDevices(mountinfo: string): Map<string, string> {
  const devices = new Map<string, string>();
  for (const line of mountinfo.split("\n")) {
    const separator = line.indexOf(" - ");
    if (separator < 0) continue;
    const fields = line.slice(0, separator).split(" ");
    if (line.slice(separator + 3).split(" ")[0] !== fuseFsType) continue;
    devices.set(unescapeMountinfo(fields[4] ?? ""), fields[2] ?? "");
  }
  return devices;
}

/** How a container's views are bound: `liveDevice` is the device of the live mount (undefined: none). */
export function bindStateOf(containerMountinfo: string | undefined, liveDevice: string | undefined): BindState {
  if (containerMountinfo === undefined) return "exited";
  const bound = [...procviewMountDevices(containerMountinfo)].filter(([target]) => viewTargets.includes(target));
  if (bound.length === 0) return "missing";
  return bound.every(([, device]) => device === liveDevice) ? "served" : "stale";
}

export async function collectStatus(stateDir: string, host: StatusHost): Promise<StatusReport> {
  if (!host.exists(stateDir)) return { stateDir, exists: false, containers: [] };
  const report: StatusReport = { stateDir, exists: true, containers: [] };
  const fuseStatus = host.readFuseStatus(stateDir);
  let liveDevice: string | undefined;
  if (fuseStatus) {
    const alive = host.isAlive(fuseStatus.pid);
    liveDevice = procviewMountDevices(host.mountinfo("self") ?? "").get(fuseStatus.mountpoint);
    const mounted = liveDevice !== undefined;
    const probe = alive && mounted ? await host.mountAnswers(fuseStatus.mountpoint) : { answers: false };
    report.fuse = { ...fuseStatus, alive, mounted, answers: probe.answers, ...(probe.error && { error: probe.error }) };
    if (!alive) liveDevice = undefined;
  }
  const pluginStatus = host.readPluginStatus(stateDir);
  if (pluginStatus) report.plugin = { ...pluginStatus, alive: host.isAlive(pluginStatus.pid) };
  for (const record of host.records(stateDir)) {
    const pid = host.pidOf(record.cgroupPath);
    const mountinfo = pid === undefined ? undefined : host.mountinfo(pid);
    const pod = record.pod?.name === undefined ? undefined : `${record.pod.namespace ?? ""}/${record.pod.name}`;
    report.containers.push({
      id: record.id,
      ...(record.name !== undefined && { name: record.name }),
      ...(pod !== undefined && { pod }),
      binds: bindStateOf(mountinfo, liveDevice),
    });
  }
  return report;
}

/** What is wrong, one line each; empty when healthy. */
export function problemsOf(report: StatusReport): string[] {
  if (!report.exists) return [`no procview running there: ${report.stateDir} does not exist`];
  const problems: string[] = [];
  const fuse = report.fuse;
  if (!fuse) problems.push("no FUSE server: no fuse.json in the state dir");
  else if (!fuse.alive) problems.push(`FUSE server pid ${fuse.pid} is gone`);
  else if (!fuse.mounted) problems.push(`no ${fuseFsType} mount at ${fuse.mountpoint}`);
  else if (!fuse.answers) problems.push(`the mount at ${fuse.mountpoint} does not answer${fuse.error ? ` (${fuse.error})` : ""}`);
  const plugin = report.plugin;
  if (!plugin) problems.push("no NRI plugin: no nri.json in the state dir");
  else if (!plugin.alive) problems.push(`NRI plugin pid ${plugin.pid} is gone`);
  else if (!plugin.connected) problems.push("the NRI plugin is not connected to the runtime");
  const stale = report.containers.filter((c) => c.binds === "stale").length;
  const missing = report.containers.filter((c) => c.binds === "missing").length;
  if (stale > 0) problems.push(`${stale} container(s) bind views of a procview mount that is gone (restart them)`);
  if (missing > 0) problems.push(`${missing} recorded container(s) have no views bound`);
  return problems;
}

export function renderStatusText(report: StatusReport, now: number): string {
  if (!report.exists) return `procview: ${problemsOf(report)[0]}\n`;
  const lines: string[] = [`state dir: ${report.stateDir}`];
  const fuse = report.fuse;
  lines.push(
    fuse
      ? `FUSE server: pid ${fuse.pid} (${fuse.alive ? "running" : "gone"}), mountpoint ${fuse.mountpoint}, ` +
          `${fuse.mounted ? (fuse.answers ? "answers" : `does not answer${fuse.error ? ` (${fuse.error})` : ""}`) : "not mounted"}` +
          (fuse.alive ? `, up ${age(now - fuse.startedAt)}` : "")
      : "FUSE server: none",
  );
  const plugin = report.plugin;
  lines.push(
    plugin
      ? `NRI plugin: pid ${plugin.pid} (${plugin.alive ? "running" : "gone"}), procview ${plugin.version}, ` +
          `${plugin.connected ? "connected" : "not connected"}` +
          (plugin.runtime ? ` to ${plugin.runtime.name} ${plugin.runtime.version}` : "") +
          ` for ${age(now - plugin.since)}`
      : "NRI plugin: none",
  );
  const count = (state: BindState) => report.containers.filter((c) => c.binds === state).length;
  lines.push(
    `containers: ${report.containers.length} recorded, ${count("served")} served, ${count("stale")} stale, ` +
      `${count("missing")} missing, ${count("exited")} exited`,
  );
  for (const container of report.containers.filter((c) => c.binds === "stale" || c.binds === "missing")) {
    lines.push(`  ${container.binds.padEnd(7)} ${container.id}${container.name ? ` ${container.name}` : ""}${container.pod ? ` (pod ${container.pod})` : ""}`);
  }
  const problems = problemsOf(report);
  lines.push(problems.length === 0 ? "healthy" : `unhealthy:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  return lines.join("\n") + "\n";
}

function age(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

export const mountProbeTimeoutMs = 2000;

/**
 * The host as it is. The readdir that checks the mount answers runs in libuv's thread
 * pool, where a hung FUSE server leaves it waiting; `hung()` then says so, because such a
 * process cannot exit normally (see runStatus).
 */
export function hostStatus(): StatusHost & { hung(): boolean } {
  let hung = false;
  let layout: CgroupLayout | undefined;
  return {
    exists: existsSync,
    readFuseStatus,
    readPluginStatus,
    isAlive(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
      }
    },
    mountinfo(pid) {
      try {
        return readFileSync(`/proc/${pid}/mountinfo`, "utf8");
      } catch {
        return undefined;
      }
    },
    async mountAnswers(mountpoint) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<{ answers: boolean; error: string }>((resolve) => {
        timer = setTimeout(() => {
          hung = true;
          resolve({ answers: false, error: `no answer in ${mountProbeTimeoutMs} ms` });
        }, mountProbeTimeoutMs);
      });
      const listing = readdir(mountpoint).then(
        () => ({ answers: true }),
        (err: NodeJS.ErrnoException) => ({ answers: false, error: err.code ?? err.message }),
      );
      try {
        return await Promise.race([listing, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    pidOf(cgroupPath) {
      layout ??= parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
      const location = locateController(layout, "memory", cgroupPath) ?? locateController(layout, "pids", cgroupPath);
      if (!location) return undefined;
      try {
        const first = readFileSync(`${location.dir}/cgroup.procs`, "utf8").split("\n")[0];
        return first ? Number(first) : undefined;
      } catch {
        return undefined;
      }
    },
    records(stateDir) {
      const registry = new ContainerRegistry(stateDir);
      return registry.ids().flatMap((id) => registry.get(id) ?? []);
    },
    hung: () => hung,
  };
}

/** `procview status`: prints the report, exits 0 only when healthy. */
export async function runStatus(stateDir: string, json: boolean): Promise<number> {
  const host = hostStatus();
  const report = await collectStatus(stateDir, host);
  const problems = problemsOf(report);
  const text = json ? JSON.stringify({ ...report, healthy: problems.length === 0, problems }, null, 2) + "\n" : renderStatusText(report, Date.now());
  writeSync(1, text);
  if (host.hung()) {
    // The readdir of the hung mount still waits in a thread-pool thread, and a normal exit
    // joins those threads: it would hang too. Only a fatal signal ends that request.
    process.kill(process.pid, "SIGKILL");
  }
  return problems.length === 0 ? 0 : 1;
}

/**
 * Crash recovery: after a FUSE server died (SIGKILL, OOM), every bind of its mount in a
 * running container reads "Transport endpoint is not connected" for good. A new server
 * finds those binds in every mount namespace on the host and replaces each one with a
 * bind of the same path in its own, live mount (core/namespace-binds.ts does the
 * binding). That covers both layouts: `containers/<id>/…` binds the NRI plugin asked
 * for and LXCFS-layout binds (`-v …/proc/meminfo:/proc/meminfo`) made by anyone.
 *
 * Which binds are ours to heal: those whose filesystem is a procview mount this state
 * directory served before. Every server adds its mount's device number (major:minor,
 * the same for all binds of one mount) to `<state-dir>/fuse-devices.json`; a dead mount
 * keeps its device number reserved while any bind of it exists, so a number in the list
 * cannot name some other live filesystem. After healing, only the live mount's number
 * and those of binds that could not be healed stay listed.
 */

import { mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fuseFsType, processStartTime } from "./fuse-status.ts";
import type { Logger } from "./log.ts";
import { parseMountinfo, type MountEntry } from "./mountinfo.ts";
import { bindInNamespaces, type BindRequest, type JobOutcome, type NamespaceJob } from "./namespace-binds.ts";
import { parseProcCgroup } from "./cgroup-path.ts";
import { ContainerRegistry } from "./registry.ts";

/** The mount table of one mount namespace, seen through one of its processes. */
export interface NamespaceMounts {
  namespace: string;
  pid: number;
  mounts: MountEntry[];
}

/** A bind of a dead procview mount, topmost at its mount point. */
export interface StaleBind {
  namespace: string;
  pid: number;
  target: string;
  /** The path inside the procview filesystem (`/containers/<id>/proc/meminfo`, `/proc/meminfo`). */
  root: string;
  device: string;
  /** From a `containers/<id>/…` root; absent for the LXCFS layout. */
  containerId?: string;
}

/** The container id in a `containers/<id>/…` path of the procview tree. */
export function containerIdOfRoot(root: string): string | undefined {
  return /^\/containers\/([^/]+)(\/|$)/.exec(root)?.[1];
}

/** The mount that is visible at each mount point: the last one mounted there. */
export function visibleMounts(mounts: MountEntry[]): Map<string, MountEntry> {
  const top = new Map<string, MountEntry>();
  for (const mount of mounts) top.set(mount.mountPoint, mount);
  return top;
}

/** Binds whose visible mount is a procview filesystem with one of `staleDevices`. */
export function findStaleBinds(namespaces: NamespaceMounts[], staleDevices: ReadonlySet<string>): StaleBind[] {
  const stale: StaleBind[] = [];
  for (const { namespace, pid, mounts } of namespaces) {
    for (const mount of visibleMounts(mounts).values()) {
      if (mount.fsType !== fuseFsType || !staleDevices.has(mount.device)) continue;
      const containerId = containerIdOfRoot(mount.root);
      stale.push({ namespace, pid, target: mount.mountPoint, root: mount.root, device: mount.device, ...(containerId !== undefined && { containerId }) });
    }
  }
  return stale;
}

/** One job per namespace: each stale bind replaced by the same path of the live mount. */
export function healingJobs(stale: StaleBind[], mountpoint: string): NamespaceJob[] {
  const jobs = new Map<string, NamespaceJob>();
  for (const bind of stale) {
    let job = jobs.get(bind.namespace);
    if (!job) jobs.set(bind.namespace, (job = { pid: bind.pid, namespace: bind.namespace, binds: [] }));
    const source = bind.root === "/" ? mountpoint : `${mountpoint.replace(/\/+$/, "")}${bind.root}`;
    job.binds.push({ source, target: bind.target, mode: "replace" });
  }
  return [...jobs.values()];
}

/** The pids listed in `procDir`. */
function listedPids(procDir: string): number[] {
  return readdirSync(procDir).filter((name) => /^\d+$/.test(name)).map(Number);
}

/**
 * Of `pids`, the one that started first. Healing acts through one process of a namespace
 * and must find it still there: the oldest is a container's init, not a child that lives
 * a few ms but came first in /proc because the pid counter had wrapped (pid_max is 32768
 * on small hosts) since the init started.
 */
function oldestProcess(pids: Iterable<number>, procDir = "/proc"): number | undefined {
  let oldest: { pid: number; start: number } | undefined;
  for (const pid of pids) {
    const start = processStartTime(pid, procDir);
    if (start !== undefined && (oldest === undefined || start < oldest.start)) oldest = { pid, start };
  }
  return oldest?.pid;
}

/** The oldest process of every mount namespace on the host (ours included), with its mount table. */
export function scanMountNamespaces(procDir = "/proc"): NamespaceMounts[] {
  const pidsByNamespace = new Map<string, number[]>();
  for (const pid of listedPids(procDir)) {
    const namespace = readableLink(`${procDir}/${pid}/ns/mnt`);
    // Undefined: exited meanwhile, or a kernel thread without a mount namespace of its own.
    if (namespace === undefined) continue;
    const pids = pidsByNamespace.get(namespace);
    if (pids) pids.push(pid);
    else pidsByNamespace.set(namespace, [pid]);
  }
  const scanned: NamespaceMounts[] = [];
  for (const [namespace, pids] of pidsByNamespace) {
    const pid = oldestProcess(pids, procDir);
    try {
      if (pid !== undefined) scanned.push({ namespace, pid, mounts: parseMountinfo(readFileSync(`${procDir}/${pid}/mountinfo`, "utf8")) });
    } catch {
      // Exited meanwhile.
    }
  }
  return scanned;
}

/** Each process's cgroup paths (any controller). */
function* processCgroups(procDir: string): Generator<{ pid: number; paths: Iterable<string> }> {
  for (const pid of listedPids(procDir)) {
    try {
      yield { pid, paths: parseProcCgroup(readFileSync(`${procDir}/${pid}/cgroup`, "utf8")).values() };
    } catch {
      // Exited meanwhile.
    }
  }
}

/** Every cgroup path some process is in. */
function occupiedCgroups(procDir: string): Set<string> {
  const occupied = new Set<string>();
  for (const { paths } of processCgroups(procDir)) for (const path of paths) occupied.add(path);
  return occupied;
}

/** A symlink's target, or undefined where it cannot be read (its process exited; pid 1 of a sandboxed host refuses it). */
function readableLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** The oldest process in the cgroup at `cgroupPath` (relative to the hierarchy roots), if any. */
export function processInCgroup(cgroupPath: string, procDir = "/proc"): number | undefined {
  const members = [...processCgroups(procDir)].filter(({ paths }) => [...paths].includes(cgroupPath));
  return oldestProcess(members.map(({ pid }) => pid), procDir);
}

const devicesFile = (stateDir: string): string => join(stateDir, "fuse-devices.json");

export function readServedDevices(stateDir: string): string[] {
  try {
    const value = JSON.parse(readFileSync(devicesFile(stateDir), "utf8")) as { devices?: unknown };
    return Array.isArray(value.devices) ? value.devices.filter((d): d is string => typeof d === "string" && /^\d+:\d+$/.test(d)) : [];
  } catch {
    return [];
  }
}

export function writeServedDevices(stateDir: string, devices: Iterable<string>): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = devicesFile(stateDir);
  writeFileSync(`${file}.tmp`, JSON.stringify({ devices: [...new Set(devices)] }) + "\n", { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** The device of the procview mount at `mountpoint` in a mountinfo text (the topmost one). */
export function procviewDeviceAt(mountinfo: string, mountpoint: string): string | undefined {
  const mounts = parseMountinfo(mountinfo).filter((m) => m.fsType === fuseFsType && m.mountPoint === mountpoint);
  return mounts.at(-1)?.device;
}

/** The device of the procview mount on `mountpoint` (a path as given: a dead mount cannot be resolved, its parent can). */
export function procviewDeviceOn(mountpoint: string): string | undefined {
  const absolute = resolve(mountpoint);
  let canonical: string;
  try {
    canonical = join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return undefined;
  }
  return procviewDeviceAt(readFileSync("/proc/self/mountinfo", "utf8"), canonical);
}

/**
 * What a FUSE server does once it serves: remember its mount's device for a successor,
 * then heal the binds of mounts of servers that died before (and of `leftoverDevice`, the
 * dead mount it found on its mountpoint). Never fails: what cannot be healed is logged.
 */
export async function healAfterStart(o: { stateDir: string; mountpoint: string; leftoverDevice?: string; logger: Logger }): Promise<HealReport | undefined> {
  try {
    const device = procviewDeviceOn(o.mountpoint);
    if (device === undefined) throw new Error(`no procview mount listed at ${o.mountpoint}`);
    writeServedDevices(o.stateDir, [...readServedDevices(o.stateDir), device]);
    const alsoStale = o.leftoverDevice === undefined ? [] : [o.leftoverDevice];
    return await healStaleBinds({ mountpoint: o.mountpoint, device, stateDir: o.stateDir, logger: o.logger, alsoStale });
  } catch (err) {
    o.logger.error("cannot heal the views of running containers", { mountpoint: o.mountpoint, err });
    return undefined;
  }
}

export interface HealOptions {
  /** The live mount's canonical mountpoint and device. */
  mountpoint: string;
  device: string;
  stateDir: string;
  logger: Logger;
  /** Devices of dead procview mounts known otherwise (the stale mount a new server found on its mountpoint). */
  alsoStale?: string[];
  procDir?: string;
  timeoutMs?: number;
}

export interface HealReport {
  /** Binds replaced by the live mount's files. */
  healed: number;
  /** Binds (or whole namespaces) that could not be healed. */
  failed: number;
  /** Recorded containers with no process left, so nothing to heal. */
  gone: string[];
}

/**
 * Finds every bind of a dead mount this state dir served and replaces it with the live
 * mount's file. Logs each container healed, and each one that could not be, with its id
 * (or, for LXCFS-layout binds, its pid and cgroup) and why.
 */
export async function healStaleBinds(o: HealOptions): Promise<HealReport> {
  const procDir = o.procDir ?? "/proc";
  const staleDevices = new Set([...readServedDevices(o.stateDir), ...(o.alsoStale ?? [])]);
  staleDevices.delete(o.device);
  const report: HealReport = { healed: 0, failed: 0, gone: [] };
  const stale = staleDevices.size === 0 ? [] : findStaleBinds(scanMountNamespaces(procDir), staleDevices);
  const outcomes = await bindInNamespaces(healingJobs(stale, o.mountpoint), o.timeoutMs);
  const stillStale = new Set<string>();
  for (const outcome of outcomes) {
    const binds = stale.filter((bind) => bind.namespace === outcome.namespace);
    const who = describeOwner(binds, outcome.pid, procDir);
    if (!outcome.ok) {
      report.failed += binds.length;
      // A namespace whose process is gone went with it; any other failure leaves dead binds behind.
      if (outcome.code !== "ENOENT" && outcome.code !== "ESRCH") binds.forEach((bind) => stillStale.add(bind.device));
      o.logger.warn("cannot heal a container's procview views", { ...who, reason: outcome.error, code: outcome.code });
      continue;
    }
    const healed = outcome.binds.filter((bind) => bind.ok);
    report.healed += healed.length;
    for (const failure of outcome.binds.filter(isFailure)) {
      const bind = binds.find((b) => b.target === failure.target);
      if (failure.code === "EEXIST") {
        // It answers: a device number reused by another procview mount since ours was gone.
        o.logger.info("left a live procview bind alone", { pid: outcome.pid, target: failure.target, device: bind?.device });
        continue;
      }
      report.failed++;
      if (bind) stillStale.add(bind.device);
      o.logger.warn("cannot heal a procview view in a container", { ...describeOwner(bind ? [bind] : binds, outcome.pid, procDir), target: failure.target, reason: failure.error, code: failure.code });
    }
    if (healed.length > 0) o.logger.info("healed a container's procview views", { ...who, targets: healed.map((b) => b.target), how: healed[0].how });
  }
  // Only after a crash: a stopped container's record is otherwise nothing to report.
  if (staleDevices.size > 0) report.gone = goneContainers(o.stateDir, stale, procDir);
  for (const id of report.gone) {
    o.logger.warn("cannot heal container: no process left in its cgroup (stopped or exited)", { containerId: id });
  }
  writeServedDevices(o.stateDir, [o.device, ...stillStale]);
  if (staleDevices.size > 0) o.logger.info("healing done", { healed: report.healed, failed: report.failed, staleDevices: [...staleDevices] });
  return report;
}

function isFailure<T extends { ok: boolean }>(outcome: T): outcome is Extract<T, { ok: false }> {
  return !outcome.ok;
}

/** Who the binds belong to, for logs: the container ids in their paths, else the process's cgroup (a Docker id is in it). */
function describeOwner(binds: StaleBind[], pid: number, procDir: string): Record<string, unknown> {
  const ids = [...new Set(binds.map((bind) => bind.containerId).filter((id) => id !== undefined))];
  if (ids.length > 0) return { containerId: ids.length === 1 ? ids[0] : ids, pid };
  let cgroup: string | undefined;
  try {
    cgroup = [...parseProcCgroup(readFileSync(`${procDir}/${pid}/cgroup`, "utf8")).values()][0];
  } catch {
    cgroup = undefined;
  }
  return { pid, cgroup, layout: "lxcfs" };
}

/** Recorded containers no process runs in, that had no bind left to heal either. */
function goneContainers(stateDir: string, stale: StaleBind[], procDir: string): string[] {
  const registry = new ContainerRegistry(stateDir);
  const ids = registry.ids();
  if (ids.length === 0) return [];
  const found = new Set(stale.map((bind) => bind.containerId));
  const occupied = occupiedCgroups(procDir);
  return ids.filter((id) => {
    if (found.has(id)) return false;
    const record = registry.get(id);
    return record !== undefined && !occupied.has(record.cgroupPath);
  });
}

/**
 * What a namespace whose visible mounts are `visible` needs so that each of `binds` shows
 * the live mount: nothing where it already does, a replacement over a procview mount of
 * another device (dead, or it is left alone), the view mounted over anything else.
 */
export function viewBindRequests(visible: ReadonlyMap<string, MountEntry>, binds: { source: string; target: string }[], liveDevice: string): BindRequest[] {
  const requests: BindRequest[] = [];
  for (const bind of binds) {
    const top = visible.get(bind.target);
    if (top?.fsType === fuseFsType && top.device === liveDevice) continue;
    requests.push({ ...bind, mode: top?.fsType === fuseFsType ? "replace" : "attach" });
  }
  return requests;
}

/**
 * For the NRI plugin (containers created while it or the FUSE server was down): makes
 * each of `binds` show the live mount (device `liveDevice`) inside the mount namespace
 * of `pid`. A target already showing it stays as it is; a dead procview bind is
 * replaced; anything else (the host's file) gets the view mounted over it.
 */
export async function ensureViewBinds(
  pid: number,
  binds: { source: string; target: string }[],
  liveDevice: string,
  options: { procDir?: string; timeoutMs?: number } = {},
): Promise<JobOutcome> {
  const procDir = options.procDir ?? "/proc";
  let namespace: string;
  let visible: Map<string, MountEntry>;
  try {
    namespace = readlinkSync(`${procDir}/${pid}/ns/mnt`);
    visible = visibleMounts(parseMountinfo(readFileSync(`${procDir}/${pid}/mountinfo`, "utf8")));
  } catch (err) {
    return { pid, namespace: "", ok: false, error: `cannot read the mounts of process ${pid}: ${(err as Error).message}`, code: (err as NodeJS.ErrnoException).code };
  }
  // A wrong pid must never put views over the host's own files.
  const hostNamespaces = new Set([readlinkSync(`${procDir}/self/ns/mnt`), readableLink(`${procDir}/1/ns/mnt`)]);
  if (hostNamespaces.has(namespace)) return { pid, namespace, ok: false, error: `process ${pid} is in the host's mount namespace, not a container's`, code: "EINVAL" };
  const requests = viewBindRequests(visible, binds, liveDevice);
  if (requests.length === 0) return { pid, namespace, ok: true, binds: [] };
  const [outcome] = await bindInNamespaces([{ pid, namespace, binds: requests }], options.timeoutMs);
  return outcome;
}

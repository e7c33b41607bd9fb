/**
 * Every view the FUSE tree can serve, by its path below a container's directory (and
 * below the LXCFS-compatible root). The tree serves exactly these; core/views.ts lists
 * which of them the NRI plugin binds.
 */

import { parseProcCgroup } from "../../core/cgroup-path.ts";
import type { CgroupLayout } from "../cgroup/layout.ts";
import { readCpuAccountingBirth, readCpuPlacement, readCpuSnapshot, type CpuPlacement, type CpuSnapshot } from "../cgroup/cpu.ts";
import { relativePathFor, type CgroupPaths } from "../cgroup/files.ts";
import { readIoSnapshot, type IoSnapshot } from "../cgroup/io.ts";
import { readMemorySnapshot, type MemorySnapshot } from "../cgroup/memory.ts";
import { containerController, readCgroupTasks, requireCgroup } from "../cgroup/tasks.ts";
import type { HostFiles } from "../host/host-files.ts";
import type { HostStat } from "../host/stat.ts";
import type { HostUptime } from "../host/uptime.ts";
import { countsForReader, countTaskStates, oldestStartTicks, sampleThreadStates, type TaskCounts, type ThreadStateSample } from "../host/task.ts";
import { readOptionalFile } from "../../core/optional-file.ts";
import type { SnapshotCache } from "../../core/snapshot-cache.ts";
import { renderCpuinfo, renderCpuOnline } from "./cpuinfo.ts";
import { renderDiskstats } from "./diskstats.ts";
import type { LoadAverageTable } from "../loadavg-sampler.ts";
import { renderLoadavg } from "./loadavg.ts";
import { renderMeminfo } from "./meminfo.ts";
import { renderStat } from "./stat.ts";
import { renderSwaps } from "./swaps.ts";
import { renderUptime } from "./uptime.ts";
import { visibleCpus, type CpuViewOptions } from "./visible-cpus.ts";

/** What renderers read besides the cgroup; one per tree (per FUSE worker thread). */
export interface ViewSources {
  layout: CgroupLayout;
  host: HostFiles;
  cpuView: CpuViewOptions;
  loadAverages: LoadAverageTable;
  /**
   * Walks of many /proc files shared for a few ms by the reads of one serving thread
   * (core/snapshot-cache.ts); every read walks afresh without them.
   */
  snapshots?: ViewSnapshots;
}

export interface ViewSnapshots {
  /** A cgroup's thread states, by its cpu hierarchy path. */
  threads: SnapshotCache<ThreadStateSample>;
  /** The start of a cgroup's oldest process, by hierarchy and path. */
  oldestStart: SnapshotCache<number | undefined>;
  /** A cgroup's memory figures for a moment (meminfo, swaps), by its memory path. */
  memory: SnapshotCache<MemorySnapshot>;
  /** A cgroup's I/O counters for a moment (diskstats), by its blkio path. */
  io: SnapshotCache<IoSnapshot>;
  /** A cgroup's cpuset and quota (limits, which change seldom: kept ~100 ms), by its cpu and cpuset paths. */
  placement: SnapshotCache<CpuPlacement>;
  /**
   * When a cgroup's CPU accounting began, by its cpuacct path: fixed for the cgroup's life,
   * kept like the placement (a cgroup made anew at the same path shows within that).
   */
  accountingBirth: SnapshotCache<number>;
  /** A cgroup's CPU time with the host's /proc/stat read just after it (stat), for at most a tick. */
  cpuWithHostStat: SnapshotCache<CpuTimeSample<HostStat>>;
  /** A cgroup's CPU time with the host's /proc/uptime read just after it (uptime), for at most a tick. */
  cpuWithHostUptime: SnapshotCache<CpuTimeSample<HostUptime>>;
  /** A reader's cgroups by its pid (the reader-pid layout), for a tick (readerCgroupCacheOptions). */
  readerCgroups: SnapshotCache<CgroupPaths>;
}

/** A cgroup's CPU time and a host clock read right after it, at `at` (ms since the epoch). */
export interface CpuTimeSample<H> {
  cpu: CpuSnapshot;
  host: H;
  at: number;
}

/**
 * For the CPU-time samples: 20 times what reading took, and never longer than a USER_HZ tick
 * (10 ms), the unit /proc/stat and /proc/uptime count in, so a shared sample shows nothing a
 * reader could tell from reading at once. Shared, they took 25-40 % off the daemon CPU of
 * a stat read (cpuacct's files, and the host's /proc/stat, which the kernel sums over every
 * CPU and interrupt at each read) and 15-30 % off an uptime read (bench/views.ts).
 */
export const cpuTimeCacheOptions = { costMultiple: 20, minValidMs: 0, maxValidMs: 10, maxEntries: 4096 };

/**
 * For the reader-pid layout's /proc/<pid>/cgroup: a tick, so a reader that opens views in
 * a burst (top's refresh opens five, a benchmark's loop hundreds) reads it once, while a
 * process moved to another cgroup sees its new one a tick later at most. A pid is not
 * reused within a tick: the kernel hands pids out in a cycle up to pid_max. Few entries:
 * only readers opening within the same tick gain.
 */
export const readerCgroupCacheOptions = { costMultiple: 0, minValidMs: 10, maxValidMs: 10, maxEntries: 64 };

/** Validity of the placement cache: a limit changed by `crictl update` shows within 100 ms. */
export const placementCacheOptions = { costMultiple: 20, minValidMs: 100, maxValidMs: 1000, maxEntries: 4096 };

/**
 * Builds a view's content for `cgroup`, as read by the thread `readerTid` (host ids; 0 when
 * the FUSE backend does not say); `fresh` (a re-read of an open handle) bypasses
 * `sources.snapshots`. Throws an ENOENT error when the cgroup is gone.
 */
export type ViewRenderer = (cgroup: CgroupPaths, sources: ViewSources, readerTid: number, fresh?: boolean) => string;

/**
 * `read()` shared for a moment (see core/snapshot-cache.ts) under the cgroup's paths in the
 * `controllers`' hierarchies; a shared one only while the cgroup exists in the first (one
 * stat, not a read), unless `thenReadsCgroup`: the caller reads the cgroup's own files
 * next, which fail for a gone cgroup, and the stat would cost as much again.
 */
function shared<V>(
  cache: SnapshotCache<V> | undefined,
  controllers: readonly string[],
  cgroup: CgroupPaths,
  sources: ViewSources,
  fresh: boolean | undefined,
  read: () => V,
  thenReadsCgroup = false,
): V {
  if (cache === undefined) return read();
  const key = controllers.map((controller) => relativePathFor(sources.layout, controller, cgroup) ?? "/").join("\n");
  let gathered = false;
  const value = cache.get(key, () => ((gathered = true), read()), fresh);
  if (!gathered && !thenReadsCgroup) requireCgroup(sources.layout, cgroup, controllers[0]);
  return value;
}

function memoryOf(cgroup: CgroupPaths, sources: ViewSources, fresh: boolean | undefined): MemorySnapshot {
  return shared(sources.snapshots?.memory, ["memory"], cgroup, sources, fresh, () => readMemorySnapshot(sources.layout, cgroup));
}

function visibleCpusOf(cgroup: CgroupPaths, sources: ViewSources, fresh?: boolean): number[] {
  const placement = placementOf(cgroup, sources, fresh);
  return visibleCpus(placement.cpuset, sources.host.onlineCpus(), placement.quotaCpus, sources.cpuView);
}

/** The cgroup's cpuset and quota, shared for a moment by the reads of one serving thread (see shared()). */
function placementOf(cgroup: CgroupPaths, sources: ViewSources, fresh = false, thenReadsCgroup = false): CpuPlacement {
  return shared(sources.snapshots?.placement, ["cpu", "cpuset"], cgroup, sources, fresh, () => readCpuPlacement(sources.layout, cgroup), thenReadsCgroup);
}

/** When the cgroup's CPU accounting began (ms since the epoch); the caller has just read its CPU time, so it exists. */
function accountingBirthOf(cgroup: CgroupPaths, sources: ViewSources, fresh: boolean | undefined): number {
  return shared(sources.snapshots?.accountingBirth, ["cpuacct"], cgroup, sources, fresh, () => readCpuAccountingBirth(sources.layout, cgroup), true);
}

/** The cgroup's CPU time now, with its (shared) placement; throws an ENOENT error when the cgroup is gone. */
function cpuOf(cgroup: CgroupPaths, sources: ViewSources, fresh: boolean | undefined): CpuSnapshot {
  return readCpuSnapshot(sources.layout, cgroup, placementOf(cgroup, sources, fresh, true));
}

/**
 * The cgroup's CPU time and the host clock `readHost` reads right after it, shared for at
 * most a tick (cpuTimeCacheOptions); a shared one only while the cgroup exists. Read and
 * shared together, so idle (the host's time less the cgroup's) never pairs a newer CPU time
 * with an older host clock.
 */
function cpuTimeWith<H>(cache: SnapshotCache<CpuTimeSample<H>> | undefined, cgroup: CgroupPaths, sources: ViewSources, fresh: boolean | undefined, readHost: () => H): CpuTimeSample<H> {
  return shared(cache, ["cpu", "cpuset", "cpuacct"], cgroup, sources, fresh, () => {
    const cpu = cpuOf(cgroup, sources, fresh);
    return { cpu, host: readHost(), at: sources.host.now() };
  });
}

function threadCounts(cgroup: CgroupPaths, sources: ViewSources, readerTid = 0, fresh = false): TaskCounts {
  const walk = () => sampleThreadStates(sources.host.procDir, readCgroupTasks(sources.layout, cgroup, "threads"));
  const cache = sources.snapshots?.threads;
  if (cache === undefined) return countsForReader(walk(), readerTid);
  const path = relativePathFor(sources.layout, "cpu", cgroup) ?? "/";
  const sample = cache.get(path, walk, fresh);
  return countsForReader(sample, readerTid, readerTid > 0 && !sample.states.has(readerTid) && readerWithin(sources, readerTid, path));
}

/** Whether thread `tid` is in the cpu cgroup `path` or below it (a reader that started after a shared sample). */
function readerWithin(sources: ViewSources, tid: number, path: string): boolean {
  const text = readOptionalFile(`${sources.host.procDir}/${tid}/cgroup`);
  const own = text === undefined ? undefined : relativePathFor(sources.layout, "cpu", parseProcCgroup(text));
  return own !== undefined && (own === path || path === "/" || own.startsWith(`${path}/`));
}

/**
 * The container's start in USER_HZ ticks since boot: the init of the reader's pid namespace
 * when it has its own (LXCFS's origin; a pod sharing its process namespace counts from the
 * pod), else the oldest process of its cgroup in any hierarchy that places it below the
 * root. undefined for a process of the host.
 */
function containerStartTicks(cgroup: CgroupPaths, sources: ViewSources, readerTid: number, fresh: boolean): number | undefined {
  const controller = containerController(sources.layout, cgroup);
  let pids: number[] | undefined;
  const processes = (): number[] => (pids ??= controller === undefined ? [] : readCgroupTasks(sources.layout, cgroup, "processes", controller));
  const init = sources.host.pidNamespaces.initOf(readerTid, processes);
  if (init !== undefined) return init.startTicks;
  if (controller === undefined) return undefined;
  const oldest = () => oldestStartTicks(sources.host.procDir, processes());
  const cache = sources.snapshots?.oldestStart;
  return cache === undefined ? oldest() : cache.get(`${controller}:${relativePathFor(sources.layout, controller, cgroup)}`, oldest, fresh);
}

/**
 * The root cgroup is the whole host (a reader outside any container, through the LXCFS
 * layout): its task figures are the host's own, and walking every task of the machine
 * at each open would make such reads expensive.
 */
function isRootCgroup(cgroup: CgroupPaths, sources: ViewSources): boolean {
  return relativePathFor(sources.layout, "cpu", cgroup) === "/";
}

export const viewRenderers: ReadonlyMap<string, ViewRenderer> = new Map<string, ViewRenderer>([
  ["proc/meminfo", (cgroup, sources, _readerTid, fresh) => renderMeminfo(memoryOf(cgroup, sources, fresh), sources.host.meminfo())],
  ["proc/swaps", (cgroup, sources, _readerTid, fresh) => renderSwaps(memoryOf(cgroup, sources, fresh), sources.host.meminfo())],
  ["proc/cpuinfo", (cgroup, sources, _readerTid, fresh) => renderCpuinfo(visibleCpusOf(cgroup, sources, fresh), sources.host.cpuinfo())],
  ["proc/stat", (cgroup, sources, readerTid, fresh) => {
    const { cpu, host } = cpuTimeWith(sources.snapshots?.cpuWithHostStat, cgroup, sources, fresh, () => sources.host.stat());
    const visible = visibleCpus(cpu.cpuset, sources.host.onlineCpus(), cpu.quotaCpus, sources.cpuView);
    return renderStat(cpu, visible, host, isRootCgroup(cgroup, sources) ? undefined : threadCounts(cgroup, sources, readerTid, fresh));
  }],
  ["proc/uptime", (cgroup, sources, readerTid, fresh) => {
    const { cpu, host, at } = cpuTimeWith(sources.snapshots?.cpuWithHostUptime, cgroup, sources, fresh, () => sources.host.uptime());
    const visible = visibleCpus(cpu.cpuset, sources.host.onlineCpus(), cpu.quotaCpus, sources.cpuView);
    const accountingSeconds = (at - accountingBirthOf(cgroup, sources, fresh)) / 1000;
    return renderUptime(host, containerStartTicks(cgroup, sources, readerTid, fresh ?? false), cpu, visible.length, accountingSeconds);
  }],
  ["proc/diskstats", (cgroup, sources, _readerTid, fresh) =>
    renderDiskstats(shared(sources.snapshots?.io, ["blkio"], cgroup, sources, fresh, () => readIoSnapshot(sources.layout, cgroup)), sources.host.diskstats())],
  ["proc/loadavg", (cgroup, sources) => {
    if (isRootCgroup(cgroup, sources)) return sources.host.loadavg();
    // One table entry per cgroup, named by its path in the hierarchy the threads are listed from.
    const key = relativePathFor(sources.layout, "cpu", cgroup) ?? "/";
    const tracked = sources.loadAverages.lookup(key);
    if (tracked !== undefined) {
      // The sampler drops a gone cgroup within 5 s; until then its entry must not outlive it.
      requireCgroup(sources.layout, cgroup);
      return renderLoadavg(tracked.averages, tracked.tasks);
    }
    // A cgroup nobody tracked yet: idle averages, as a kernel just booted, and its tasks now (the one walk a read makes).
    const tasks = threadCounts(cgroup, sources);
    sources.loadAverages.track(key, tasks);
    return renderLoadavg([0, 0, 0], tasks);
  }],
  ["sys/devices/system/cpu/online", (cgroup, sources, _readerTid, fresh) => renderCpuOnline(visibleCpusOf(cgroup, sources, fresh))],
]);

/** The sampler's count of a cgroup's tasks: undefined when the cgroup is gone. */
export function cgroupTaskCounter(layout: CgroupLayout, host: HostFiles): (relativePath: string) => TaskCounts | undefined {
  return (relativePath) => {
    try {
      return countTaskStates(host.procDir, readCgroupTasks(layout, relativePath, "threads"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  };
}

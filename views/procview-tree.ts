/**
 * The tree procview's FUSE server serves:
 *
 * - `containers/<id>/<view>` for each container the NRI plugin recorded (core/registry.ts),
 *   rendered from the cgroup in its record;
 * - `<view>` at the root (`proc/meminfo`, …, `sys/devices/system/cpu/online`), the LXCFS
 *   layout, rendered from the cgroup of whichever process reads it.
 *
 * Views are built at open from the cgroup's files. Nothing else of the host is reachable.
 */

import { readFileSync } from "node:fs";
import { parseProcCgroup } from "../core/cgroup-path.ts";
import { parseCgroupLayout, type CgroupLayout } from "./cgroup/layout.ts";
import { createLogger, isLogLevel, type Logger } from "../core/log.ts";
import { ContainerRegistry } from "../core/registry.ts";
import type { CgroupPaths } from "./cgroup/files.ts";
import { HostFiles } from "./host/host-files.ts";
import { errno, FsError, type AuditedDirectory, type DirNode, type FileNode, type FsNode, type RequestContext } from "../fuse/node.ts";
import { readOptionalFile } from "../core/optional-file.ts";
import { SnapshotCache } from "../core/snapshot-cache.ts";
import { cgroupTaskCounter, cpuTimeCacheOptions, placementCacheOptions, readerCgroupCacheOptions, viewRenderers, type ViewRenderer, type ViewSources } from "./render/catalog.ts";
import { createLoadAverageMemory, LoadAverageTable, startLoadAverageSampler, type LoadAverageSampler } from "./loadavg-sampler.ts";
import { recordViewRead, type ViewLayout, type ViewStats } from "./view-stats.ts";

export interface ProcviewTreeOptions {
  /** The state directory shared with the NRI plugin (holds containers/<id>.json). */
  stateDir: string;
  /** Show only ceil(quota/period) CPUs in cpuinfo, online, stat and uptime. Off by default, as in LXCFS. */
  cpuLimitByQuota?: boolean;
  /** The cgroup mounts; read from /proc/self/mountinfo when absent. */
  cgroupLayout?: CgroupLayout;
  /**
   * Load averages shared by every worker's tree and the sampler (createLoadAverageMemory() in
   * the main thread, startLoadAverageSampling() there too; structured cloning shares it).
   * Without it nothing samples: /proc/loadavg stays at its first, idle, averages.
   */
  loadAverageMemory?: SharedArrayBuffer;
  /** The host's procfs and sysfs; "/proc" and "/sys" when absent (tests point them at fixtures). */
  procDir?: string;
  sysDir?: string;
  logLevel?: string;
  /** Shared read counters for /metrics (views/view-stats.ts); none when metrics are off. */
  viewStats?: ViewStats;
}

/** The server's entry point (fuse/node.ts TreeModule); options arrive structured-cloned from the main thread. */
export function createTree(options: ProcviewTreeOptions): DirNode {
  const checked = checkOptions(options);
  const logger = createLogger({
    level: checked.logLevel !== undefined && isLogLevel(checked.logLevel) ? checked.logLevel : "info",
    fields: { component: "procview-tree" },
  });
  const { layout, host } = hostSources(checked);
  const sources: ViewSources = {
    layout,
    host,
    cpuView: { limitByQuota: checked.cpuLimitByQuota ?? false },
    loadAverages: new LoadAverageTable(checked.loadAverageMemory ?? createLoadAverageMemory()),
    snapshots: {
      threads: new SnapshotCache(),
      oldestStart: new SnapshotCache(),
      memory: new SnapshotCache(),
      io: new SnapshotCache(),
      placement: new SnapshotCache(placementCacheOptions),
      accountingBirth: new SnapshotCache(placementCacheOptions),
      cpuWithHostStat: new SnapshotCache(cpuTimeCacheOptions),
      cpuWithHostUptime: new SnapshotCache(cpuTimeCacheOptions),
      readerCgroups: new SnapshotCache(readerCgroupCacheOptions),
    },
  };
  return createProcviewTree(new ContainerRegistry(checked.stateDir), sources, logger, checked.viewStats);
}

/** containers/: the kernel keeps a container's folder until its record goes (fuse/kernel/entry-audit.ts). */
export function auditedDirectories(options: ProcviewTreeOptions): AuditedDirectory[] {
  const registry = new ContainerRegistry(checkOptions(options).stateDir);
  return [{ path: ["containers"], names: () => new Set(registry.ids()), version: () => registry.version() }];
}

/**
 * Samples the load averages the trees given `options.loadAverageMemory` show: every cgroup
 * read through them and every container the NRI plugin recorded, every 5 s. Runs on the
 * calling thread's event loop: the main thread, never a FUSE worker (those block on /dev/fuse).
 */
export function startLoadAverageSampling(options: ProcviewTreeOptions & { loadAverageMemory: SharedArrayBuffer }, logger: Logger): LoadAverageSampler {
  const checked = checkOptions(options);
  const { layout, host } = hostSources(checked);
  const registry = new ContainerRegistry(checked.stateDir);
  const countTasks = cgroupTaskCounter(layout, host);
  const recordedKeys = (): string[] => registry.ids().flatMap((id) => registry.get(id)?.cgroupPath ?? []);
  return startLoadAverageSampler(new LoadAverageTable(options.loadAverageMemory), () => ({ countTasks, recordedKeys: recordedKeys() }), (err) =>
    logger.error("load average sampling failed", { err }),
  );
}

function hostSources(options: ProcviewTreeOptions): { layout: CgroupLayout; host: HostFiles } {
  return {
    layout: options.cgroupLayout ?? parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8")),
    host: new HostFiles({ procDir: options.procDir, sysDir: options.sysDir }),
  };
}

/** Container directories kept between lookups; beyond this many the oldest is built again when looked up. */
const maxContainerDirectories = 4096;

export function createProcviewTree(registry: ContainerRegistry, sources: ViewSources, logger: Logger, stats?: ViewStats): DirNode {
  // Each LOOKUP of containers/<id> reads the record again (a removed container disappears at
  // once) but reuses the directory built for the same record: a lookup allocates nothing.
  const built = new Map<string, { cgroupPath: string; cpuLimitByQuota: boolean | undefined; dir: DirNode }>();
  const containerDirectory = (id: string, cgroupPath: string, cpuLimitByQuota: boolean | undefined): DirNode => {
    const known = built.get(id);
    if (known !== undefined && known.cgroupPath === cgroupPath && known.cpuLimitByQuota === cpuLimitByQuota) return known.dir;
    // The container's own CPU option (from its pod's annotations) overrides the server's.
    const containerSources = cpuLimitByQuota === undefined ? sources : { ...sources, cpuView: { limitByQuota: cpuLimitByQuota } };
    const containerLogger = logger.child({ container: id, cgroupPath });
    // Stable: the server's main thread expires the folder's entry once the record goes (auditedDirectories).
    const views = viewDirectory(
      counted(stats, "containers", (renderer, viewPath, ctx) => renderView(renderer, viewPath, cgroupPath, containerSources, ctx, containerLogger)),
    );
    const dir: DirNode = { ...views, stable: true };
    built.delete(id);
    if (built.size >= maxContainerDirectories) built.delete(built.keys().next().value!);
    built.set(id, { cgroupPath, cpuLimitByQuota, dir });
    return dir;
  };
  const containers: DirNode = {
    kind: "dir",
    stable: true,
    // Container ids (and so which pods run here) are for root: others may open a container's
    // files by their path, as the container's own processes do through its binds, but not list them.
    mode: 0o711,
    lookup(id) {
      const record = registry.get(id);
      if (record === undefined) {
        built.delete(id);
        return undefined;
      }
      return containerDirectory(id, record.cgroupPath, record.cpuLimitByQuota);
    },
    list: () => registry.ids(),
  };
  const readerViews = viewDirectory(
    counted(stats, "lxcfs", (renderer, viewPath, ctx) => {
      const cgroup = readerCgroup(sources, ctx);
      return renderView(renderer, viewPath, cgroup, sources, ctx, logger);
    }),
  );
  return staticDirectory(new Map<string, FsNode>([["containers", containers], ...readerViews.entries]));
}

/** The reader's cgroups as /proc/<pid>/cgroup lists them, shared for a tick by that pid's opens; read anew for a re-read of an open handle. */
function readerCgroup(sources: ViewSources, ctx: RequestContext): CgroupPaths {
  const read = (): CgroupPaths => {
    const text = Number.isSafeInteger(ctx.pid) && ctx.pid > 0 ? readOptionalFile(`${sources.host.procDir}/${ctx.pid}/cgroup`) : undefined;
    if (text === undefined) throw new FsError(errno.ENOENT, `reader pid ${ctx.pid} has no /proc entry`);
    return parseProcCgroup(text);
  };
  const cache = sources.snapshots?.readerCgroups;
  return cache === undefined ? read() : cache.get(String(ctx.pid), read, ctx.rerender);
}

function renderView(renderer: ViewRenderer, viewPath: string, cgroup: CgroupPaths, sources: ViewSources, ctx: RequestContext, logger: Logger): string {
  try {
    return renderer(cgroup, sources, ctx.pid, ctx.rerender);
  } catch (error) {
    if (error instanceof FsError) throw error;
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      logger.warn("cgroup is gone", { view: viewPath, readerPid: ctx.pid, error });
      throw new FsError(errno.ENOENT, `cgroup gone while rendering ${viewPath}`);
    }
    logger.error("view failed", { view: viewPath, readerPid: ctx.pid, error });
    throw new FsError(errno.EIO, `cannot render ${viewPath}`);
  }
}

type RenderAtOpen = (renderer: ViewRenderer, viewPath: string, ctx: RequestContext) => string;

/** `render`, counted in the shared view stats when metrics are on. */
function counted(stats: ViewStats | undefined, layout: ViewLayout, render: RenderAtOpen): RenderAtOpen {
  if (!stats) return render;
  return (renderer, viewPath, ctx) => {
    const started = performance.now();
    let failed = true;
    try {
      const text = render(renderer, viewPath, ctx);
      failed = false;
      return text;
    } finally {
      recordViewRead(stats, viewPath, layout, (performance.now() - started) / 1000, failed);
    }
  };
}

/** The directories and files of every view in the catalog, each rendered by `render`. */
function viewDirectory(render: RenderAtOpen): StaticDirectory {
  const root = new Map<string, FsNode>();
  for (const [viewPath, renderer] of viewRenderers) {
    const names = viewPath.split("/");
    let entries = root;
    for (const name of names.slice(0, -1)) {
      let dir = entries.get(name) as StaticDirectory | undefined;
      if (dir === undefined) {
        dir = staticDirectory(new Map());
        entries.set(name, dir);
      }
      entries = dir.entries;
    }
    const file: FileNode = { kind: "file", stable: true, open: (ctx) => render(renderer, viewPath, ctx) };
    entries.set(names[names.length - 1], file);
  }
  return staticDirectory(root);
}

interface StaticDirectory extends DirNode {
  entries: Map<string, FsNode>;
}

function staticDirectory(entries: Map<string, FsNode>): StaticDirectory {
  return {
    kind: "dir",
    stable: true,
    entries,
    lookup: (name) => entries.get(name),
    list: () => [...entries.keys()],
  };
}

function checkOptions(options: ProcviewTreeOptions): ProcviewTreeOptions {
  if (typeof options !== "object" || options === null) throw new Error("procview tree options must be an object");
  if (typeof options.stateDir !== "string" || !options.stateDir.startsWith("/")) {
    throw new Error(`procview tree needs an absolute stateDir, got ${JSON.stringify(options.stateDir)}`);
  }
  for (const key of ["procDir", "sysDir"] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== "string" || !value.startsWith("/"))) {
      throw new Error(`procview tree ${key} must be an absolute path, got ${JSON.stringify(value)}`);
    }
  }
  if (options.loadAverageMemory !== undefined && !(options.loadAverageMemory instanceof SharedArrayBuffer)) {
    throw new Error("procview tree loadAverageMemory must be a SharedArrayBuffer from createLoadAverageMemory()");
  }
  if (options.cpuLimitByQuota !== undefined && typeof options.cpuLimitByQuota !== "boolean") {
    throw new Error("procview tree cpuLimitByQuota must be a boolean");
  }
  return options;
}

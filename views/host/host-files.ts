/**
 * The host's side of every view: /proc and /sys files parsed. Files that only change with
 * CPU hotplug (cpuinfo, the online list) are kept for a few seconds, because reading and
 * splitting cpuinfo costs more than rendering a view; the host's meminfo and its list of
 * block devices (diskstats: names and column count, never its counters) for a second; the
 * rest is read fresh at each open.
 */

import { parseCpuList } from "../cgroup/cpu-list.ts";
import { readOptionalFile, readRequiredFile } from "../../core/optional-file.ts";
import { parseHostCpuinfo, type HostCpuinfo } from "./cpuinfo.ts";
import { parseHostDiskstats, type HostDisk } from "./diskstats.ts";
import { parseHostMeminfo, type HostMeminfo } from "./meminfo.ts";
import { PidNamespaces } from "./pid-namespace.ts";
import { parseHostStat, type HostStat } from "./stat.ts";
import { parseHostUptime, type HostUptime } from "./uptime.ts";

export interface HostFilesOptions {
  /** "/proc" unless tests point elsewhere. */
  procDir?: string;
  /** "/sys" unless tests point elsewhere. */
  sysDir?: string;
  /** How long cpuinfo and the online list are reused; 5 s by default. */
  cpuTopologyTtlMs?: number;
  /** How long the host's meminfo is reused; 1 s by default. */
  hostMemoryTtlMs?: number;
  /**
   * How long the host's block devices are reused; 1 s by default. Reading and splitting
   * /proc/diskstats cost half a diskstats view's rendering; a device added shows within it.
   */
  hostDevicesTtlMs?: number;
  /** The wall clock, ms since the epoch; Date.now by default. */
  now?: () => number;
}

interface Cached<T> {
  value: T;
  readAt: number;
}

export class HostFiles {
  readonly procDir: string;
  /** Containers' pid namespaces and their inits, remembered while their inits live. */
  readonly pidNamespaces: PidNamespaces;
  private readonly sysDir: string;
  private readonly ttlMs: number;
  private readonly memoryTtlMs: number;
  private readonly devicesTtlMs: number;
  /** The wall clock the caches (and views comparing with file times) go by. */
  readonly now: () => number;
  private cachedMeminfo: Cached<HostMeminfo> | undefined;
  private cachedCpuinfo: Cached<HostCpuinfo> | undefined;
  private cachedOnline: Cached<number[]> | undefined;
  private cachedDisks: Cached<HostDisk[]> | undefined;

  constructor(options: HostFilesOptions = {}) {
    this.procDir = options.procDir ?? "/proc";
    this.pidNamespaces = new PidNamespaces(this.procDir);
    this.sysDir = options.sysDir ?? "/sys";
    this.ttlMs = options.cpuTopologyTtlMs ?? 5000;
    this.memoryTtlMs = options.hostMemoryTtlMs ?? 1000;
    this.devicesTtlMs = options.hostDevicesTtlMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  meminfo(): HostMeminfo {
    if (!this.isFresh(this.cachedMeminfo, this.memoryTtlMs)) {
      this.cachedMeminfo = { value: parseHostMeminfo(this.readProc("meminfo")), readAt: this.now() };
    }
    return this.cachedMeminfo.value;
  }

  stat(): HostStat {
    return parseHostStat(this.readProc("stat"));
  }

  uptime(): HostUptime {
    return parseHostUptime(this.readProc("uptime"));
  }

  /** The host's /proc/loadavg as the kernel prints it. */
  loadavg(): string {
    return this.readProc("loadavg");
  }

  diskstats(): HostDisk[] {
    if (!this.isFresh(this.cachedDisks, this.devicesTtlMs)) {
      this.cachedDisks = { value: parseHostDiskstats(this.readProc("diskstats")), readAt: this.now() };
    }
    return this.cachedDisks.value;
  }

  cpuinfo(): HostCpuinfo {
    if (!this.isFresh(this.cachedCpuinfo)) {
      this.cachedCpuinfo = { value: parseHostCpuinfo(this.readProc("cpuinfo")), readAt: this.now() };
    }
    return this.cachedCpuinfo.value;
  }

  /** Online host CPUs; without the sysfs file, the CPUs cpuinfo lists. */
  onlineCpus(): readonly number[] {
    if (!this.isFresh(this.cachedOnline)) {
      const text = readOptionalFile(`${this.sysDir}/devices/system/cpu/online`);
      const cpus = text === undefined ? [...this.cpuinfo().blocks.keys()].sort((a, b) => a - b) : parseCpuList(text);
      this.cachedOnline = { value: cpus, readAt: this.now() };
    }
    return this.cachedOnline.value;
  }

  private isFresh<T>(cached: Cached<T> | undefined, ttlMs = this.ttlMs): cached is Cached<T> {
    return cached !== undefined && this.now() - cached.readAt < ttlMs;
  }

  private readProc(name: string): string {
    return readRequiredFile(`${this.procDir}/${name}`);
  }
}

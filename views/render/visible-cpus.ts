/**
 * Which host CPUs a container is shown, in the order it sees them as cpu0, cpu1, …:
 * its effective cpuset, optionally cut to the CPUs its quota pays for. cpuinfo, the
 * online list, /proc/stat and uptime's idle all use this one answer so they agree.
 */

export interface CpuViewOptions {
  /** Show only ceil(quota / period) CPUs (LXCFS's --enable-cfs). */
  limitByQuota: boolean;
}

export function visibleCpus(
  cpuset: readonly number[] | undefined,
  hostCpus: readonly number[],
  quotaCpus: number,
  options: CpuViewOptions,
): number[] {
  const online = new Set(hostCpus);
  const allowed = cpuset?.filter((cpu) => online.has(cpu)) ?? [];
  // A cpuset naming no online CPU cannot run anything; the host's CPUs are the honest fallback.
  const cpus = allowed.length > 0 ? allowed : [...hostCpus].sort((a, b) => a - b);
  if (!options.limitByQuota || !Number.isFinite(quotaCpus)) return cpus;
  return cpus.slice(0, Math.max(1, Math.ceil(quotaCpus)));
}

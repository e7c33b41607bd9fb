/** /proc/uptime for a container: seconds since it started, and idle CPU-seconds of its CPUs over that time. */

import { userHz, type CpuSnapshot } from "../cgroup/cpu.ts";
import type { HostUptime } from "../host/uptime.ts";

/**
 * `startTicks` is the container's start (USER_HZ ticks since boot); undefined (a process
 * of the host) shows the host's uptime. idle is what the visible CPUs did not spend on the
 * container over its uptime, so it never exceeds uptime × CPUs and grows while they idle.
 * The cgroup's CPU time counts since the cgroup was created, `accountingSeconds` ago: a
 * cgroup older than the container (reused, or the host's root when the container has no
 * cpu cgroup of its own) is charged its average rate over the container's uptime only.
 */
export function renderUptime(host: HostUptime, startTicks: number | undefined, cpu: CpuSnapshot, visibleCount: number, accountingSeconds: number): string {
  const uptime = startTicks === undefined ? host.uptime : Math.max(0, host.uptime - startTicks / userHz);
  const busy = (cpu.usage.user + cpu.usage.system) / 1e9;
  const shareInUptime = accountingSeconds > uptime ? uptime / accountingSeconds : 1;
  const idle = Math.max(0, uptime * Math.max(1, visibleCount) - busy * shareInUptime);
  return `${uptime.toFixed(2)} ${idle.toFixed(2)}\n`;
}

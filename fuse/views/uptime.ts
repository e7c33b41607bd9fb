/** /proc/uptime for a container: seconds since its first process started, and idle CPU-seconds of its CPUs. */

import { userHz, type CpuSnapshot } from "../cgroup/cpu.ts";
import type { HostUptime } from "../host/uptime.ts";

/**
 * `startTicks` is the oldest process's start (USER_HZ ticks since boot); undefined (an
 * empty cgroup) shows the host's uptime. idle is what the visible CPUs did not spend on
 * the container, the same accounting as the container's /proc/stat.
 */
export function renderUptime(host: HostUptime, startTicks: number | undefined, cpu: CpuSnapshot, visibleCount: number): string {
  const uptime = startTicks === undefined ? host.uptime : Math.max(0, host.uptime - startTicks / userHz);
  const busy = (cpu.usage.user + cpu.usage.system) / 1e9;
  const idle = Math.max(0, uptime * Math.max(1, visibleCount) - busy);
  return `${uptime.toFixed(2)} ${idle.toFixed(2)}\n`;
}

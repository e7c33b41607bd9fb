/**
 * /proc/stat for a container: one line per visible CPU with the cgroup's own user and
 * system time, idle the rest of the CPU's elapsed time, and the host's other lines.
 */

import { userHz, type CpuSnapshot } from "../cgroup/cpu.ts";
import { elapsedTicks, type HostStat } from "../host/stat.ts";
import type { TaskCounts } from "../host/task.ts";

interface CpuLine {
  user: number;
  system: number;
  idle: number;
}

/**
 * Per visible CPU (renumbered from 0) the cgroup's user and system ticks. idle is the
 * rest of the time the host says that CPU existed, so user+system+idle grows with the
 * host's clock and never goes backwards.
 */
export function containerCpuLines(cpu: CpuSnapshot, visible: readonly number[], host: HostStat): CpuLine[] {
  const toTicks = (ns: number): number => Math.floor((ns * userHz) / 1e9);
  const used = visible.map(() => ({ user: 0, system: 0 }));
  if (visible.length === 0) return [];
  if (cpu.perCpu !== undefined) {
    const index = new Map(visible.map((hostCpu, i) => [hostCpu, i]));
    let spill = 0;
    for (const [hostCpu, time] of cpu.perCpu) {
      // Time spent on CPUs the container is not shown (an older cpuset, the quota cut)
      // still belongs to it: fold it onto the visible ones so the totals stay whole.
      const target = index.get(hostCpu) ?? spill++ % visible.length;
      used[target].user += time.user;
      used[target].system += time.system;
    }
  } else {
    // v2 does not split usage by CPU: an even share per CPU keeps every line monotonic.
    for (const share of used) {
      share.user = cpu.usage.user / visible.length;
      share.system = cpu.usage.system / visible.length;
    }
  }
  return visible.map((hostCpu, i) => {
    const user = toTicks(used[i].user);
    const system = toTicks(used[i].system);
    const ticks = host.cpus.get(hostCpu);
    const elapsed = ticks === undefined ? 0 : elapsedTicks(ticks);
    return { user, system, idle: Math.max(0, elapsed - user - system) };
  });
}

export function renderStat(cpu: CpuSnapshot, visible: readonly number[], host: HostStat, tasks: TaskCounts | undefined): string {
  const lines = containerCpuLines(cpu, visible, host);
  const sum = lines.reduce((total, line) => ({ user: total.user + line.user, system: total.system + line.system, idle: total.idle + line.idle }), {
    user: 0,
    system: 0,
    idle: 0,
  });
  let text = `cpu  ${formatTicks(sum)}\n`;
  lines.forEach((line, i) => {
    text += `cpu${i} ${formatTicks(line)}\n`;
  });
  for (const line of host.otherLines) {
    if (tasks !== undefined && line.startsWith("procs_running ")) text += `procs_running ${tasks.running}\n`;
    else if (tasks !== undefined && line.startsWith("procs_blocked ")) text += `procs_blocked ${tasks.blocked}\n`;
    else text += line + "\n";
  }
  return text;
}

/** The kernel's ten columns; the cgroup only knows user, system and (derived) idle. */
function formatTicks(line: CpuLine): string {
  return `${line.user} 0 ${line.system} ${line.idle} 0 0 0 0 0 0`;
}

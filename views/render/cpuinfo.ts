/** /proc/cpuinfo and /sys/devices/system/cpu/online for a container: its visible CPUs, renumbered from 0. */

import { formatCpuList } from "../cgroup/cpu-list.ts";
import type { HostCpuinfo } from "../host/cpuinfo.ts";

/** The host's block of each visible CPU, in order, with "processor" renumbered from 0. */
export function renderCpuinfo(visible: readonly number[], host: HostCpuinfo): string {
  let text = host.preamble;
  let index = 0;
  for (const cpu of visible) {
    const block = host.blocks.get(cpu);
    if (block === undefined) continue;
    text += `processor\t: ${index}\n${block}`;
    index++;
  }
  return text;
}

/** The container's CPUs are 0…n-1 after renumbering. */
export function renderCpuOnline(visible: readonly number[]): string {
  return formatCpuList(visible.map((_, index) => index)) + "\n";
}

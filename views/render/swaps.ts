/** /proc/swaps for a container: one virtual device sized like its swap, or only the header. */

import type { MemorySnapshot } from "../cgroup/memory.ts";
import type { HostMeminfo } from "../host/meminfo.ts";
import { containerMeminfoValues } from "./meminfo.ts";

const header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

/** Uses the same swap figures as meminfo's SwapTotal/SwapFree, so the two views agree. */
export function renderSwaps(memory: MemorySnapshot, host: HostMeminfo): string {
  const values = containerMeminfoValues(memory, host);
  const size = values.get("SwapTotal") ?? host.values.get("SwapTotal") ?? 0;
  const free = values.get("SwapFree") ?? host.values.get("SwapFree") ?? 0;
  if (size <= 0) return header;
  const used = Math.max(0, size - free);
  // The kernel's layout: the name padded to 40 columns, an extra tab after numbers under 10^7.
  const name = "none";
  return `${header}${name}${" ".repeat(40 - name.length)}virtual\t${size}\t${size < 10000000 ? "\t" : ""}${used}\t${used < 10000000 ? "\t" : ""}0\n`;
}

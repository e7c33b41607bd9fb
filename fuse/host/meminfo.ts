/** The host's /proc/meminfo: the line order and every value a container view falls back to. */

import { readFileSync } from "node:fs";

export interface MeminfoLine {
  name: string;
  /** kB for kB lines, a plain count otherwise (HugePages_Total …). */
  value: number;
  hasKbUnit: boolean;
}

export interface HostMeminfo {
  /** In the kernel's order: views print the host's lines in the host's order. */
  lines: readonly MeminfoLine[];
  /** name → value (kB or count). */
  values: ReadonlyMap<string, number>;
}

export function parseHostMeminfo(text: string): HostMeminfo {
  const lines: MeminfoLine[] = [];
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([^:\s]+):\s+(\d+)( kB)?$/.exec(line);
    if (!match) continue;
    const entry = { name: match[1], value: Number(match[2]), hasKbUnit: match[3] !== undefined };
    lines.push(entry);
    values.set(entry.name, entry.value);
  }
  if (!values.has("MemTotal")) throw new Error("host meminfo has no MemTotal line");
  return { lines, values };
}

export function readHostMeminfo(path = "/proc/meminfo"): HostMeminfo {
  return parseHostMeminfo(readFileSync(path, "latin1"));
}

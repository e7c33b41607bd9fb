/** The host's /proc/cpuinfo, split into one block per CPU so views can pick and renumber them. */

export interface HostCpuinfo {
  /** Lines before the first "processor" line (none on x86 and arm64). */
  preamble: string;
  /** Host CPU number → its block without the "processor : N" line (ends with the blank separator line). */
  blocks: ReadonlyMap<number, string>;
}

const processorLine = /^processor\s*:\s*(\d+)\s*$/;

export function parseHostCpuinfo(text: string): HostCpuinfo {
  const blocks = new Map<number, string>();
  let preamble = "";
  let current: number | undefined;
  let body = "";
  for (const line of text.split(/(?<=\n)/)) {
    const match = processorLine.exec(line.replace(/\n$/, ""));
    if (match) {
      if (current !== undefined) blocks.set(current, body);
      current = Number(match[1]);
      body = "";
    } else if (current === undefined) {
      preamble += line;
    } else {
      body += line;
    }
  }
  if (current !== undefined) blocks.set(current, body);
  if (blocks.size === 0) throw new Error("host cpuinfo has no processor lines");
  return { preamble, blocks };
}

/** The host's /proc/meminfo: the line order and every value a container view falls back to. */

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
  // A hand-written scanner: the host's meminfo (~55 lines) is parsed at every meminfo open.
  const lines: MeminfoLine[] = [];
  const values = new Map<string, number>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const entry = parseMeminfoLine(text, start, end);
    if (entry !== undefined) {
      lines.push(entry);
      values.set(entry.name, entry.value);
    }
    start = end + 1;
  }
  if (!values.has("MemTotal")) throw new Error("host meminfo has no MemTotal line");
  return { lines, values };
}

/** "Name:   1234 kB" or "Name:   1234" between start and end; undefined for anything else. */
function parseMeminfoLine(text: string, start: number, end: number): MeminfoLine | undefined {
  const colon = text.indexOf(":", start);
  if (colon <= start || colon >= end) return undefined;
  let digitsStart = colon + 1;
  while (digitsStart < end && text.charCodeAt(digitsStart) === 32) digitsStart++;
  let digitsEnd = digitsStart;
  while (digitsEnd < end && text.charCodeAt(digitsEnd) >= 48 && text.charCodeAt(digitsEnd) <= 57) digitsEnd++;
  if (digitsEnd === digitsStart || digitsStart === colon + 1) return undefined;
  const unit = text.slice(digitsEnd, end);
  if (unit !== "" && unit !== " kB") return undefined;
  const name = text.slice(start, colon);
  if (name.includes(" ")) return undefined;
  return { name, value: Number(text.slice(digitsStart, digitsEnd)), hasKbUnit: unit !== "" };
}

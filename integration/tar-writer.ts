/**
 * A minimal POSIX ustar writer: enough for an OCI image layer and an OCI layout archive
 * without docker or a registry. Every entry is owned by root and dated 1970-01-01, so the
 * same input always gives the same bytes and therefore the same sha256 digest.
 */

export type TarEntry =
  | { type: "directory"; path: string; mode?: number }
  | { type: "file"; path: string; content: Uint8Array; mode?: number }
  | { type: "symlink"; path: string; target: string };

const blockSize = 512;
const encoder = new TextEncoder();

/** The archive bytes: one header (+ content padded to 512) per entry, then two zero blocks. */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const blocks: Uint8Array[] = [];
  for (const entry of entries) {
    const size = entry.type === "file" ? entry.content.length : 0;
    blocks.push(tarHeader(entry, size));
    if (entry.type === "file") {
      blocks.push(entry.content);
      const padding = (blockSize - (size % blockSize)) % blockSize;
      if (padding > 0) blocks.push(new Uint8Array(padding));
    }
  }
  blocks.push(new Uint8Array(2 * blockSize));
  return Buffer.concat(blocks);
}

function tarHeader(entry: TarEntry, size: number): Uint8Array {
  const header = new Uint8Array(blockSize);
  const path = entry.type === "directory" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
  const { prefix, name } = splitPath(path);
  const defaultMode = entry.type === "file" ? 0o644 : entry.type === "directory" ? 0o755 : 0o777;
  const mode = entry.type === "symlink" ? 0o777 : (entry.mode ?? defaultMode);
  const typeflag = entry.type === "file" ? "0" : entry.type === "directory" ? "5" : "2";
  const linkname = entry.type === "symlink" ? entry.target : "";
  if (encoder.encode(linkname).length > 100) throw new Error(`tar: symlink target longer than 100 bytes: ${linkname}`);

  writeString(header, 0, 100, name);
  writeOctal(header, 100, 8, mode);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, 0);
  writeString(header, 156, 1, typeflag);
  writeString(header, 157, 100, linkname);
  writeString(header, 257, 6, "ustar\0");
  writeString(header, 263, 2, "00");
  writeString(header, 265, 32, "root");
  writeString(header, 297, 32, "root");
  writeString(header, 345, 155, prefix);
  // The checksum is computed with its own field read as eight spaces.
  header.fill(0x20, 148, 156);
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  writeString(header, 148, 8, checksum.toString(8).padStart(6, "0") + "\0 ");
  return header;
}

/** ustar stores paths over 100 bytes as prefix (≤155) + "/" + name (≤100). */
function splitPath(path: string): { prefix: string; name: string } {
  if (path === "" || path.startsWith("/") || path.includes("\0")) {
    throw new Error(`tar: entry path must be relative and non-empty: ${JSON.stringify(path)}`);
  }
  if (encoder.encode(path).length <= 100) return { prefix: "", name: path };
  // A trailing "/" (directory) is part of the name, so search for a split before it.
  for (let slash = path.lastIndexOf("/", path.length - 2); slash > 0; slash = path.lastIndexOf("/", slash - 1)) {
    const prefix = path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (encoder.encode(name).length > 100) break;
    if (encoder.encode(prefix).length <= 155) return { prefix, name };
  }
  throw new Error(`tar: path does not fit a ustar header: ${path}`);
}

function writeString(header: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > length) throw new Error(`tar: ${JSON.stringify(value)} exceeds its ${length}-byte field`);
  header.set(bytes, offset);
}

/** Octal digits, zero-padded, NUL-terminated, filling the field. */
function writeOctal(header: Uint8Array, offset: number, length: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`tar: invalid numeric field ${value}`);
  const digits = value.toString(8);
  if (digits.length > length - 1) throw new Error(`tar: ${value} does not fit a ${length}-byte field`);
  writeString(header, offset, length, digits.padStart(length - 1, "0") + "\0");
}

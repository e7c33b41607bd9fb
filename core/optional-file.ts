/**
 * Reading kernel files that may vanish under us: cgroup files go with their cgroup,
 * /proc/<pid> files with their process. "Gone" is an answer there, not an error.
 *
 * Every view open reads several of these small files, so this avoids readFileSync's
 * fstat and per-call buffers: open, read into one reused buffer until EOF, close.
 */

import { closeSync, openSync, readSync } from "node:fs";

let buffer = Buffer.allocUnsafe(64 * 1024);

/** A file's text, or undefined when it (or the process it belongs to) does not exist. Other errors throw. */
export function readOptionalFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ESRCH") return undefined;
    throw error;
  }
  try {
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        const larger = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(larger, 0, 0, length);
        buffer = larger;
      }
      const count = readSync(fd, buffer, length, buffer.length - length, null);
      if (count === 0) break;
      length += count;
    }
    return buffer.toString("latin1", 0, length);
  } catch (error) {
    // A process that exits while its file is open reads as ESRCH; its file is gone, as above.
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return undefined;
    throw error;
  } finally {
    closeSync(fd);
  }
}

/** A file's text; throws (ENOENT included) when it cannot be read. */
export function readRequiredFile(path: string): string {
  const text = readOptionalFile(path);
  if (text === undefined) {
    const error: NodeJS.ErrnoException = new Error(`file missing: ${path}`);
    error.code = "ENOENT";
    throw error;
  }
  return text;
}

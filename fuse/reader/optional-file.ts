/**
 * Reading kernel files that may vanish under us: cgroup files go with their cgroup,
 * /proc/<pid> files with their process. "Gone" is an answer there, not an error.
 */

import { readFileSync } from "node:fs";

/** A file's text, or undefined when it (or the process it belongs to) does not exist. Other errors throw. */
export function readOptionalFile(path: string): string | undefined {
  try {
    return readFileSync(path, "latin1");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ESRCH") return undefined;
    throw error;
  }
}

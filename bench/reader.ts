/**
 * One benchmark reader: a child process (forked with an IPC channel) that, for each
 * request it receives, opens, reads to the end and closes one file `reads` times with
 * blocking system calls, the way `cat` does. Separate processes, so 8 readers really
 * are 8 concurrent callers of the filesystem, each with its own pid and cgroup.
 */

import { closeSync, openSync, readSync } from "node:fs";

export interface ReadRequest {
  /** Read in turn, read i going to paths[i % paths.length]. */
  paths: string[];
  reads: number;
}

export type ReadReply =
  | { ok: true; reads: number; bytes: number; startNs: string; endNs: string; lastContent: string }
  | { ok: false; error: string };

// Bigger than any view, so one read gets the whole snapshot and the next sees end of file.
const buffer = Buffer.allocUnsafe(256 * 1024);

function readToEnd(path: string): number {
  const fd = openSync(path, "r");
  try {
    let total = 0;
    for (;;) {
      const count = readSync(fd, buffer, total, buffer.length - total, null);
      if (count === 0) return total;
      total += count;
    }
  } finally {
    closeSync(fd);
  }
}

function serve(request: ReadRequest): ReadReply {
  try {
    let bytes = 0;
    let last = 0;
    // hrtime is CLOCK_MONOTONIC, shared by all processes: the parent compares readers' spans.
    const start = process.hrtime.bigint();
    for (let i = 0; i < request.reads; i++) {
      last = readToEnd(request.paths[i % request.paths.length]);
      bytes += last;
    }
    const end = process.hrtime.bigint();
    return {
      ok: true,
      reads: request.reads,
      bytes,
      startNs: start.toString(),
      endNs: end.toString(),
      lastContent: buffer.toString("utf8", 0, last),
    };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

if (process.send === undefined) {
  process.stderr.write("bench/reader.ts runs as a forked child of a benchmark (bench/readers.ts)\n");
  process.exit(2);
}
process.on("message", (request: ReadRequest) => process.send!(serve(request)));
// The parent going away (or disconnecting us) ends the reader.
process.on("disconnect", () => process.exit(0));

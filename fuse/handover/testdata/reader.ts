/**
 * A consumer of a FUSE view in its own process, with blocking calls as `cat` or `free`
 * make them, for the handover tests. Usage: reader.ts MODE FILE
 *   every-100ms   open, read whole, close, every 0.1 s
 *   hold-open     one open file read a little every 0.1 s, reopened at its end
 *   byte-by-byte  read(2) of 1 byte at a time, one every 2 ms
 * Runs until its stdin closes, then prints one JSON summary: reads done, failures (with
 * their errors), when each whole open began and ended, the contents of the last few,
 * and the longest single open-to-close time.
 */

import { closeSync, openSync, readSync } from "node:fs";
import { Buffer } from "node:buffer";

const [mode, file] = process.argv.slice(2);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const pause = (ms: number): void => void Atomics.wait(sleeper, 0, 0, ms);

let stopping = false;
process.stdin.on("end", () => (stopping = true)).resume();

const summary = { reads: 0, opens: 0, failures: [] as string[], contents: [] as string[], spans: [] as [number, number][], longestMs: 0 };
const chunkSize = { "every-100ms": 64 * 1024, "hold-open": 64, "byte-by-byte": 1 }[mode];
const pauseMs = { "every-100ms": 100, "hold-open": 100, "byte-by-byte": 2 }[mode];
if (chunkSize === undefined || pauseMs === undefined || !file) throw new Error(`usage: reader.ts every-100ms|hold-open|byte-by-byte FILE (got ${mode} ${file})`);

/** One open read to EOF in chunks, pausing between reads; the content it saw. */
function readOnce(): string {
  const fd = openSync(file, "r");
  summary.opens++;
  try {
    const parts: Buffer[] = [];
    for (;;) {
      const buffer = Buffer.alloc(chunkSize!);
      const length = readSync(fd, buffer, 0, chunkSize!, null);
      summary.reads++;
      if (length === 0) return Buffer.concat(parts).toString();
      parts.push(buffer.subarray(0, length));
      if (mode !== "every-100ms") pause(pauseMs!);
    }
  } finally {
    closeSync(fd);
  }
}

// The loop blocks this thread; stdin's end is seen between rounds.
function round(): void {
  if (stopping) {
    process.stdout.write(JSON.stringify({ ...summary, contents: summary.contents.slice(-5) }) + "\n");
    return;
  }
  const start = Date.now();
  try {
    summary.contents.push(readOnce());
    summary.spans.push([start, Date.now()]);
    if (mode === "every-100ms") summary.longestMs = Math.max(summary.longestMs, Date.now() - start);
  } catch (err) {
    summary.failures.push(`${(err as NodeJS.ErrnoException).code ?? ""} ${(err as Error).message}`);
  }
  if (summary.contents.length > 20) summary.contents.splice(0, 10);
  if (mode === "every-100ms") pause(pauseMs!);
  setImmediate(round);
}
round();

/**
 * `node bench/fuse-server.ts [--reads N]`: the FUSE server's own cost, apart from any
 * view rendering: open + read-all + close of a small fixed file (the test fixture tree),
 * N times, by 1 reader and by 4 concurrent reader processes, with 1 and with 2 worker
 * threads. Needs root and /dev/fuse; mounts in a temp dir and removes it.
 */

import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "../core/log.ts";
import { startFuseServer } from "../fuse/daemon.ts";

const { values } = parseArgs({ options: { reads: { type: "string", default: "20000" } } });
const reads = Number(values.reads);
if (!Number.isInteger(reads) || reads < 1) throw new Error(`--reads must be a positive integer, got ${values.reads}`);
const concurrentReaders = 4;

/** A reader process: reads the file `count` times and prints its own elapsed ns. */
const readerScript = `
import { readFileSync } from "node:fs";
const [file, count] = process.argv.slice(1);
const start = process.hrtime.bigint();
for (let i = 0; i < Number(count); i++) readFileSync(file);
process.stdout.write(String(process.hrtime.bigint() - start));
`;

function readerProcess(file: string, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", readerScript, file, String(count)], { stdio: ["ignore", "ignore", "inherit"] });
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`reader exited ${code}`))));
  });
}

const dir = mkdtempSync(join(tmpdir(), "procview-fuse-bench-"));
chmodSync(dir, 0o755);
mkdirSync(join(dir, "dynamic"));
const rows: string[] = [];
try {
  for (const workers of [1, 2]) {
    const server = await startFuseServer({
      mountpoint: join(dir, "mnt"),
      stateDir: join(dir, "state"),
      treeModule: new URL("../fuse/kernel/testdata/fixture-tree.ts", import.meta.url).href,
      treeOptions: { dynamicDir: join(dir, "dynamic") },
      workers,
      logger: createLogger({ level: "warn" }),
    });
    const file = join(server.mountpoint, "hello.txt");
    try {
      let start = process.hrtime.bigint();
      for (let i = 0; i < reads; i++) readFileSync(file);
      const sequentialNs = Number(process.hrtime.bigint() - start);
      start = process.hrtime.bigint();
      await Promise.all(Array.from({ length: concurrentReaders }, () => readerProcess(file, Math.ceil(reads / concurrentReaders))));
      // Includes the reader processes' start-up (~tens of ms), small against the reads.
      const concurrentNs = Number(process.hrtime.bigint() - start);
      rows.push(
        `${String(workers).padStart(7)}  ${Math.round(reads / (sequentialNs / 1e9)).toLocaleString("en").padStart(14)}  ${Math.round(
          (Math.ceil(reads / concurrentReaders) * concurrentReaders) / (concurrentNs / 1e9),
        )
          .toLocaleString("en")
          .padStart(18)}`,
      );
    } finally {
      await server.stop();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`open+read+close of the fixture tree's 12-byte hello.txt, ${reads} reads per run`);
console.log(`workers  1 reader (reads/s)  ${concurrentReaders} readers (reads/s)`);
for (const row of rows) console.log(row);

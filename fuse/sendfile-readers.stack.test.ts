/**
 * Readers that copy a view with sendfile(2), as `busybox cat` does, several at once
 * (real `procview fuse`, root, /dev/fuse, a writable cgroup hierarchy). sendfile reads
 * through the page cache, where the page a reader is reading stays locked until the
 * server answers its READ; a server thread writing the page-cache store of another
 * reader's open into that page waited for it for good, with one serving thread at once.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";
import { makeCgroup, removeCgroup, type TestCgroup } from "./testdata/test-cgroup.ts";

const run = promisify(execFile);
const MiB = 1024 * 1024;
const readSeconds = 2;
/** Far longer than the readers' own 2 s: only a hung server takes it. */
const readerTimeoutMs = 60_000;

/** Joins the cgroup folders given after the file, then copies the file with sendfile(2) for argv[2] seconds; prints what it saw. */
const sendfileReader = String.raw`
import json, os, sys, time
path, seconds, dirs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
for d in dirs:
    open(os.path.join(d, "cgroup.procs"), "w").write(str(os.getpid()))
out = os.memfd_create("copy")
seen = {}
reads = 0
end = time.time() + seconds
while time.time() < end:
    fd = os.open(path, os.O_RDONLY)
    os.ftruncate(out, 0)
    os.lseek(out, 0, os.SEEK_SET)
    while os.sendfile(out, fd, None, 65536) > 0:
        pass
    os.close(fd)
    os.lseek(out, 0, os.SEEK_SET)
    first = os.read(out, 1 << 16).decode("latin1").split("\n")[0]
    seen[first] = seen.get(first, 0) + 1
    reads += 1
print(json.dumps({"reads": reads, "firstLines": seen}))
`;

/** Aborts the FUSE connection mounted on `mountpoint` (fusectl), so that a server hung in the kernel lets go. */
function abortFuseConnection(mountpoint: string): void {
  const line = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .find((entry) => entry.split(" ")[4] === mountpoint);
  if (line === undefined) return;
  const minor = line.split(" ")[2].split(":")[1];
  const connections = "/sys/fs/fuse/connections";
  if (!readFileSync("/proc/self/mountinfo", "utf8").includes(` ${connections} `)) execFileSync("mount", ["-t", "fusectl", "fusectl", connections]);
  writeFileSync(join(connections, minor, "abort"), "1");
}

describe("concurrent sendfile readers of one view", () => {
  for (const workers of ["0", "1", "2"]) {
    test(`never hang the server (--workers ${workers}); the copies are whole views`, { timeout: 180_000 }, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), "procview-sendfile-"));
      const unique = `procview-sendfile-${process.pid}-${Date.now()}`;
      const cgroups: TestCgroup[] = [];
      let server: ProcviewFuse | undefined;
      let finished = false;
      t.after(async () => {
        if (server !== undefined) {
          // A hung server is in uninterruptible sleep: only an aborted connection frees it.
          if (!finished) abortFuseConnection(server.mountpoint);
          await server.stop();
        }
        for (const cgroup of cgroups) await removeCgroup(cgroup);
        rmSync(dir, { recursive: true, force: true });
      });
      cgroups.push(makeCgroup(`/${unique}-a`, 64 * MiB, undefined, spawn("sleep", ["300"], { stdio: "ignore" })));
      cgroups.push(makeCgroup(`/${unique}-b`, 96 * MiB, undefined, spawn("sleep", ["300"], { stdio: "ignore" })));
      server = await startProcviewFuse({ dir, extraArgs: ["--workers", workers] });
      const view = join(server.mountpoint, "proc", "meminfo");

      const readers = [cgroups[0], cgroups[1], cgroups[0]].map((cgroup) =>
        run("python3", ["-c", sendfileReader, view, String(readSeconds), ...cgroup.dirs], { timeout: readerTimeoutMs, killSignal: "SIGKILL" }),
      );
      const outcomes = await Promise.allSettled(readers);
      finished = outcomes.every((outcome) => outcome.status === "fulfilled");
      for (const [i, outcome] of outcomes.entries()) {
        assert.equal(outcome.status, "fulfilled", `reader ${i} ended on its own (a hung server leaves it waiting): ${outcome.status === "rejected" ? outcome.reason : ""}`);
      }
      const seen = outcomes.map((outcome) => JSON.parse((outcome as PromiseFulfilledResult<{ stdout: string }>).value.stdout) as { reads: number; firstLines: Record<string, number> });
      for (const [i, { reads, firstLines }] of seen.entries()) {
        assert.ok(reads > 20, `reader ${i} read ${reads} times in ${readSeconds} s`);
        // An empty copy is the known race of README's "Files report size 0": a size refresh between a copy's open and its read.
        const { "": empty = 0, ...whole } = firstLines;
        for (const first of Object.keys(whole)) assert.match(first, /^MemTotal:\s+\d+ kB$/, `reader ${i} copied whole views`);
        assert.ok(empty <= reads / 20, `reader ${i}: ${empty} of ${reads} copies empty`);
      }
      process.stdout.write(`# --workers ${workers}: ${seen.map((s) => `${s.reads} reads ${JSON.stringify(s.firstLines)}`).join("; ")}\n`);
      assert.ok(server.records().every((record) => record.level !== "error"), "no error logged");
    });
  }
});

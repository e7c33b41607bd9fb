/**
 * The real `procview fuse` process (root, /dev/fuse) gives back the pages of its executable
 * its start touched ten seconds after it runs (cli/procview.ts), then its native heap's
 * free pages (native-heap.ts), and serves on as before.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startProcviewFuse } from "../integration/procview-process.ts";
import { residentKiB } from "./startup-pages.ts";

test("ten seconds after it runs, the server's file-backed pages shrink, its native heap is trimmed, and views read as before", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "procview-pages-"));
  chmodSync(dir, 0o755);
  let stopServer = async (): Promise<void> => {};
  t.after(async () => {
    await stopServer();
    rmSync(dir, { recursive: true, force: true });
  });
  const server = await startProcviewFuse({ dir });
  stopServer = () => server.stop();
  const views = ["meminfo", "stat", "cpuinfo", "loadavg", "uptime"].map((name) => join(server.mountpoint, "proc", name));
  const firstReads = views.map((path) => readFileSync(path, "latin1"));
  const fileBackedBefore = residentKiB(readFileSync(`/proc/${server.pid}/status`, "utf8")).file;

  const deadline = Date.now() + 20_000;
  const record = async (msg: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const found = server.records().find((candidate) => candidate.msg === msg);
      if (found !== undefined) return found;
      const trouble = server.records().find((candidate) => candidate.level === "warn" || candidate.level === "error");
      assert.equal(trouble, undefined, "no warning or error instead");
      assert.ok(Date.now() < deadline, `no '${msg}' 20 s after the server started`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const given = await record("startup pages given back");
  const [before, after] = given.fileBackedMiB as [number, number];
  assert.ok(after < before, `file-backed RSS ${before} → ${after} MiB`);
  assert.ok(residentKiB(readFileSync(`/proc/${server.pid}/status`, "utf8")).file < fileBackedBefore, "lower than before the release, seen from outside");
  // The trim ran. What it gives back is native-heap.stack.test.ts's to measure: here the
  // serving threads allocate at the same time, so the RSS may as well be a little higher after.
  const aroundTrim = (await record("free native heap given back")).rssMiB;
  assert.ok(Array.isArray(aroundTrim) && aroundTrim.length === 2 && aroundTrim.every((mib) => typeof mib === "number" && mib > 0), `RSS around the trim: ${JSON.stringify(aroundTrim)}`);

  // The code serving needs comes back from the page cache: every view renders its lines as it did.
  const lineStarts = (text: string) => text.split("\n").map((line) => /^[a-zA-Z_ ]*/.exec(line)![0]);
  views.forEach((path, index) => assert.deepEqual(lineStarts(readFileSync(path, "latin1")), lineStarts(firstReads[index]), path));
  assert.match(readFileSync(views[0], "latin1"), /^MemTotal: +\d+ kB$/m);
});

/**
 * The same FUSE server under Deno 2 (`deno run -A`), read through its mount from this
 * process. Deno's workers speak to /dev/fuse through libc via FFI (see device-io.ts),
 * so this is the test that the Deno variant serves a real mount end to end.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { readFuseStatus } from "../../core/fuse-status.ts";
import { isProcviewMount, unmountFuse } from "./mount.ts";
import { errorCodeOf, eventually } from "./testdata/expect.ts";

const run = promisify(execFile);
const here = import.meta.url;
const serveScript = fileURLToPath(new URL("./testdata/serve-fixture.ts", here));
const pinnedDeno = fileURLToPath(new URL("../../node_modules/.bin/deno", here));
const deno = existsSync(pinnedDeno) ? pinnedDeno : "deno";

test("a server running under deno run -A serves its mount to this process", async () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-deno-test-"));
  chmodSync(dir, 0o755);
  const mountpoint = join(dir, "mnt");
  const stateDir = join(dir, "state");
  const dynamicDir = join(dir, "dynamic");
  mkdirSync(dynamicDir);
  const server = spawn(deno, ["run", "-A", serveScript, mountpoint, stateDir, dynamicDir, "2"], { stdio: ["pipe", "pipe", "pipe"] });
  let logs = "";
  server.stderr.setEncoding("utf8").on("data", (chunk: string) => (logs += chunk));
  const exited = new Promise<number | null>((resolve) => server.on("exit", resolve));
  try {
    const announced = await new Promise<{ serving: string; pid: number }>((resolve, reject) => {
      let output = "";
      server.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk;
        if (output.includes("\n")) resolve(JSON.parse(output.split("\n")[0]));
      });
      void exited.then((code) => reject(new Error(`deno server exited (${code}) before serving:\n${logs}`)));
    });
    assert.equal(announced.serving, mountpoint);
    assert.equal(readFuseStatus(stateDir)?.pid, server.pid);

    assert.equal(readFileSync(join(mountpoint, "hello.txt"), "utf8"), "hello, fuse\n");
    assert.equal(readFileSync(join(mountpoint, "big.txt"), "utf8").length, 320_000);
    assert.ok(readdirSync(mountpoint).includes("sub"));
    assert.equal(statSync(join(mountpoint, "hello.txt")).mode, 0o100444);
    assert.equal(statSync(join(mountpoint, "hello.txt")).size, 0);
    assert.equal(errorCodeOf(() => writeFileSync(join(mountpoint, "hello.txt"), "x")), "EROFS");
    assert.equal(errorCodeOf(() => readFileSync(join(mountpoint, "missing"))), "ENOENT");
    assert.equal(errorCodeOf(() => readFileSync(join(mountpoint, "broken.txt"))), "EIO");
    await eventually(() => /"level":"error","msg":"FUSE request failed".*fixture node failure/.test(logs));

    const readers = await Promise.all(Array.from({ length: 8 }, () => run("cat", [join(mountpoint, "big.txt")], { maxBuffer: 1 << 20 })));
    for (const { stdout } of readers) assert.equal(stdout.length, 320_000);

    const reader = spawn("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "cat", join(mountpoint, "whoami.txt")], { stdio: ["ignore", "pipe", "inherit"] });
    let whoami = "";
    reader.stdout.setEncoding("utf8").on("data", (chunk: string) => (whoami += chunk));
    await new Promise((resolve) => reader.on("close", resolve));
    assert.deepEqual(JSON.parse(whoami), { pid: reader.pid, uid: 65534, gid: 65534 });

    server.stdin.end(); // the fixture server stops when its stdin closes
    assert.equal(await exited, 0);
    assert.equal(isProcviewMount(mountpoint), false);
    assert.equal(readFuseStatus(stateDir), undefined);
  } finally {
    if (server.exitCode === null) {
      server.kill();
      await exited;
    }
    if (isProcviewMount(mountpoint)) await unmountFuse(mountpoint, { lazy: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

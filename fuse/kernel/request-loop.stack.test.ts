/**
 * The request loop on a real mount (needs root and /dev/fuse): stopping between
 * requests and carrying on with a new loop on the same fd, as a handover will; sendfile
 * readers of a file whose length changes.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import { chmodSync, closeSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { createLogger } from "../../core/log.ts";
import { isProcviewMount, mountFuse, openFuseDevice, unmountFuse } from "./mount.ts";
import { createSharedFuseState, startRequestLoop } from "./request-loop.ts";
import { asyncErrorCodeOf } from "./testdata/expect.ts";

const fixtureTree = new URL("./testdata/fixture-tree.ts", import.meta.url).href;
const quiet = createLogger({ write: () => {} });
const run = promisify(execFile);

async function eventually(condition: () => boolean): Promise<void> {
  for (let tries = 0; tries < 1000 && !condition(); tries++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(condition(), "condition never became true");
}

async function withMount(body: (mount: { fd: number; mountpoint: string; dynamicDir: string }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "procview-loop-test-"));
  chmodSync(dir, 0o755);
  const mountpoint = join(dir, "mnt");
  const dynamicDir = join(dir, "dynamic");
  mkdirSync(mountpoint);
  mkdirSync(dynamicDir);
  const fd = openFuseDevice();
  try {
    await mountFuse(fd, mountpoint);
    await body({ fd, mountpoint, dynamicDir });
  } finally {
    if (isProcviewMount(mountpoint)) await unmountFuse(mountpoint, { lazy: true });
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

test("stop between requests, then a new loop on the same fd and state keeps the mount serving", async () => {
  await withMount(async ({ fd, mountpoint, dynamicDir }) => {
    const state = createSharedFuseState();
    const options = { fd, mountpoint, treeModule: fixtureTree, treeOptions: { dynamicDir }, state, logger: quiet };
    const first = await startRequestLoop({ ...options, workers: 2 });
    const hello = join(mountpoint, "hello.txt");

    // A reader that never pauses: a request taken and not answered would hang it for good.
    const reader = spawn("sh", ["-c", 'while cat "$0" >/dev/null; do echo; done', join(mountpoint, "sub", "inner.txt")], { stdio: ["ignore", "pipe", "inherit"] });
    let reads = 0;
    reader.stdout.on("data", (chunk: Buffer) => (reads += chunk.length));
    let readerExit: number | null | undefined;
    reader.on("exit", (code) => (readerExit = code));
    await eventually(() => reads > 20);

    // Reads from this thread are asynchronous: a store may be handed to it to write (see deferred-writes.ts).
    const held = await open(hello, "r"); // its handle must outlive the first loop
    await first.stop();
    assert.equal(await first.finished, "stopped");
    assert.ok(isProcviewMount(mountpoint), "the mount outlives the loop");

    const second = await startRequestLoop({ ...options, workers: 3 });
    const readsAtRestart = reads;
    await eventually(() => reads > readsAtRestart + 20);
    const content = Buffer.alloc(64);
    const { bytesRead } = await held.read(content, 0, 64, 0);
    await held.close();
    assert.equal(content.subarray(0, bytesRead).toString(), "hello, fuse\n", "the open handle carried over");
    assert.equal(await readFile(hello, "utf8"), "hello, fuse\n");

    reader.kill();
    await eventually(() => readerExit !== undefined);
    assert.equal(readerExit, null, "the reader ran until killed, no read failed");
    await second.stop();
    assert.equal(await second.finished, "stopped");
  });
});

test("a loop whose mount is removed ends as unmounted", async () => {
  await withMount(async ({ fd, mountpoint, dynamicDir }) => {
    const loop = await startRequestLoop({ fd, mountpoint, treeModule: fixtureTree, treeOptions: { dynamicDir }, state: createSharedFuseState(), workers: 1, logger: quiet });
    // A lone worker hands its stores to this thread (deferred-writes.ts): read without blocking it.
    assert.equal(await readFile(join(mountpoint, "hello.txt"), "utf8"), "hello, fuse\n");
    await unmountFuse(mountpoint);
    assert.equal(await loop.finished, "unmounted");
    await loop.stop();
  });
});

test("the main thread serves (workers 0) and hands over to workers and back on the same fd and state, no read failing", async () => {
  await withMount(async ({ fd, mountpoint, dynamicDir }) => {
    const state = createSharedFuseState();
    const options = { fd, mountpoint, treeModule: fixtureTree, treeOptions: { dynamicDir }, state, logger: quiet };
    // This thread serves: its own reads of the mount must not block it (see main-thread-loop.ts).
    const first = await startRequestLoop({ ...options, workers: 0 });
    assert.equal(first.workers, 0);
    const hello = join(mountpoint, "hello.txt");
    assert.equal(await readFile(hello, "utf8"), "hello, fuse\n");

    const reader = spawn("sh", ["-c", 'while cat "$0" >/dev/null; do echo; done', join(mountpoint, "sub", "inner.txt")], { stdio: ["ignore", "pipe", "inherit"] });
    let reads = 0;
    reader.stdout.on("data", (chunk: Buffer) => (reads += chunk.length));
    let readerExit: number | null | undefined;
    reader.on("exit", (code) => (readerExit = code));
    await eventually(() => reads > 20);

    const held = await open(hello, "r");
    await first.stop();
    assert.equal(await first.finished, "stopped");
    const workers = await startRequestLoop({ ...options, workers: 1 });
    let readsAtRestart = reads;
    await eventually(() => reads > readsAtRestart + 20);
    await workers.stop();
    const last = await startRequestLoop({ ...options, workers: 0 });
    readsAtRestart = reads;
    await eventually(() => reads > readsAtRestart + 20);
    const content = Buffer.alloc(64);
    const { bytesRead } = await held.read(content, 0, 64, 0);
    await held.close();
    assert.equal(content.subarray(0, bytesRead).toString(), "hello, fuse\n", "the open handle carried over both handovers");

    reader.kill();
    await eventually(() => readerExit !== undefined);
    assert.equal(readerExit, null, "the reader ran until killed, no read failed");
    await last.stop();
    assert.equal(await last.finished, "stopped");
    assert.ok(isProcviewMount(mountpoint), "the mount outlives the loops");
  });
});

test("a stable folder whose name goes is expired from the main thread, whichever thread serves, and by the next loop for a name gone between loops", async () => {
  await withMount(async ({ fd, mountpoint, dynamicDir }) => {
    const auditedDir = join(dirname(dynamicDir), "audited");
    mkdirSync(auditedDir);
    const options = { fd, mountpoint, treeModule: fixtureTree, treeOptions: { dynamicDir, auditedDir }, state: createSharedFuseState(), logger: quiet };
    const folder = (name: string) => join(mountpoint, "audited", name);
    const appear = async (name: string) => {
      writeFileSync(join(auditedDir, name), "");
      assert.equal(await readFile(join(folder(name), "name"), "utf8"), name);
    };
    // The kernel keeps the folder's entry for a minute: only the expiry makes it go sooner.
    const goneWithin3s = async (name: string) => {
      const deadline = Date.now() + 3000;
      while ((await asyncErrorCodeOf(() => stat(folder(name)))) !== "ENOENT") {
        assert.ok(Date.now() < deadline, `audited/${name} still reachable 3 s after its name went`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    for (const workers of [0, 2]) {
      const loop = await startRequestLoop({ ...options, workers });
      await appear(`kept-${workers}`);
      await appear(`gone-${workers}`);
      rmSync(join(auditedDir, `gone-${workers}`));
      await goneWithin3s(`gone-${workers}`);
      assert.equal(await readFile(join(folder(`kept-${workers}`), "name"), "utf8"), `kept-${workers}`);
      await loop.stop();
    }
    const first = await startRequestLoop({ ...options, workers: 1 });
    await appear("between");
    await first.stop();
    rmSync(join(auditedDir, "between"));
    const next = await startRequestLoop({ ...options, workers: 1 });
    await goneWithin3s("between");
    await next.stop();
  });
});

test("a main-thread loop whose mount is removed ends as unmounted", async () => {
  await withMount(async ({ fd, mountpoint, dynamicDir }) => {
    const loop = await startRequestLoop({ fd, mountpoint, treeModule: fixtureTree, treeOptions: { dynamicDir }, state: createSharedFuseState(), workers: 0, logger: quiet });
    assert.equal(await readFile(join(mountpoint, "hello.txt"), "utf8"), "hello, fuse\n");
    await unmountFuse(mountpoint);
    assert.equal(await loop.finished, "unmounted");
    await loop.stop();
  });
});

test("a tree that cannot be built fails the start, and no worker is left reading", async () => {
  await withMount(async ({ fd, mountpoint }) => {
    const state = createSharedFuseState();
    await assert.rejects(
      startRequestLoop({ fd, mountpoint, treeModule: new URL("./testdata/no-such-tree.ts", fixtureTree).href, treeOptions: {}, state, workers: 2, logger: quiet }),
      /FUSE worker \d/,
    );
    // Had a worker stayed in a read, it would take this loop's requests; the new loop serves them all.
    const loop = await startRequestLoop({ fd, mountpoint, treeModule: fixtureTree, treeOptions: { dynamicDir: mountpoint }, state, workers: 1, logger: quiet });
    assert.equal(await readFile(join(mountpoint, "hello.txt"), "utf8"), "hello, fuse\n");
    await loop.stop();
  });
});

test("the worker count is validated", async () => {
  const base = { fd: -1, mountpoint: "/nonexistent", treeModule: fixtureTree, treeOptions: {}, state: createSharedFuseState({ nodes: 4, handles: { handles: 1, chunks: 1, chunkSize: 4 } }) };
  await assert.rejects(startRequestLoop({ ...base, workers: -1 }), /workers must be an integer in 0\.\.64/);
  await assert.rejects(startRequestLoop({ ...base, workers: 1.5 }), /workers must be/);
});

/**
 * Stores left out where the kernel knows a file's size already (known-sizes.ts): writes
 * the backing file with a length of its own at every step (across page boundaries), then
 * copies the view by sendfile(2) (through the page cache, up to the size the kernel
 * knows), reads it by read(2) or stats it (both can make the kernel's size shrink), and
 * counts the reads that differ from what was written.
 */
const lengthChangingReader = String.raw`
import json, os, random, sys
backing, view, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
lengths = [1, 10, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12000, 20000]
wrong, copies = [], 0
def read_all(fd):
    got = b""
    while chunk := os.read(fd, 65536):
        got += chunk
    return got
for step in range(steps):
    length = rng.choice(lengths)
    content = (chr(97 + step % 26) * (length - 1) + "\n").encode()
    with open(backing, "wb") as f:
        f.write(content)
    how = rng.choice(["sendfile", "sendfile", "read", "stat"])
    if how == "stat":
        os.stat(view)
        continue
    fd = os.open(view, os.O_RDONLY)
    if how == "sendfile":
        out = os.memfd_create("copy")
        while os.sendfile(out, fd, None, 65536) > 0:
            pass
        os.lseek(out, 0, os.SEEK_SET)
        got = read_all(out)
        os.close(out)
        copies += 1
    else:
        got = read_all(fd)
    os.close(fd)
    if got != content:
        wrong.append({"step": step, "how": how, "length": length, "got": len(got)})
print(json.dumps({"copies": copies, "wrong": wrong[:10], "wrongCount": len(wrong)}))
`;

for (const workers of [0, 2]) {
  test(`sendfile copies of a file whose length changes at every open are whole, stores left out or not (--workers ${workers})`, { timeout: 120_000 }, async () => {
    await withMount(async ({ fd, mountpoint, dynamicDir }) => {
      const loop = await startRequestLoop({ fd, mountpoint, treeModule: fixtureTree, treeOptions: { dynamicDir }, state: createSharedFuseState(), logger: quiet, workers });
      try {
        const { stdout } = await run("python3", ["-c", lengthChangingReader, join(dynamicDir, "file"), join(mountpoint, "dynamic", "file"), "3000"], { timeout: 60_000, killSignal: "SIGKILL" });
        const result = JSON.parse(stdout) as { copies: number; wrong: unknown[]; wrongCount: number };
        assert.ok(result.copies > 1000, `${result.copies} sendfile copies`);
        assert.equal(result.wrongCount, 0, `reads that were not the whole file: ${JSON.stringify(result.wrong)}`);
      } finally {
        await loop.stop();
      }
    });
  });
}

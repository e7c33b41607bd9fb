/**
 * Stores left out where the kernel knows a file's size already (known-sizes.ts), on a real
 * mount (root, /dev/fuse): a file whose length grows and shrinks between opens, across
 * page boundaries, copied with sendfile(2) (through the page cache, up to the size the
 * kernel knows) between direct reads and stat(2) calls that make the kernel's size shrink.
 * Every copy must be the whole file.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, closeSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLogger } from "../../core/log.ts";
import { isProcviewMount, mountFuse, openFuseDevice, unmountFuse } from "./mount.ts";
import { createSharedFuseState, startRequestLoop } from "./request-loop.ts";

const run = promisify(execFile);
const fixtureTree = new URL("./testdata/fixture-tree.ts", import.meta.url).href;
const quiet = createLogger({ write: () => {} });

/**
 * Writes the backing file with a length of its own at every step, reads the view by
 * sendfile, by read(2) or stats it, and counts the copies that differ from what was written.
 */
const reader = String.raw`
import json, os, random, sys
backing, view, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
lengths = [1, 10, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12000, 20000]
wrong, copies = [], 0
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
    got = b""
    if how == "sendfile":
        out = os.memfd_create("copy")
        while os.sendfile(out, fd, None, 65536) > 0:
            pass
        os.lseek(out, 0, os.SEEK_SET)
        while True:
            chunk = os.read(out, 65536)
            if not chunk:
                break
            got += chunk
        os.close(out)
        copies += 1
    else:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
    os.close(fd)
    if got != content:
        wrong.append({"step": step, "how": how, "length": length, "got": len(got)})
print(json.dumps({"copies": copies, "wrong": wrong[:10], "wrongCount": len(wrong)}))
`;

for (const workers of [0, 2]) {
  test(`sendfile copies of a file whose length changes at every open are whole (--workers ${workers})`, { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "procview-known-sizes-"));
    chmodSync(dir, 0o755);
    const mountpoint = join(dir, "mnt");
    const dynamicDir = join(dir, "dynamic");
    mkdirSync(mountpoint);
    mkdirSync(dynamicDir);
    const fd = openFuseDevice();
    try {
      await mountFuse(fd, mountpoint);
      const loop = await startRequestLoop({ fd, mountpoint, treeModule: fixtureTree, treeOptions: { dynamicDir }, state: createSharedFuseState(), logger: quiet, workers });
      try {
        const { stdout } = await run("python3", ["-c", reader, join(dynamicDir, "file"), join(mountpoint, "dynamic", "file"), "3000"], { timeout: 60_000, killSignal: "SIGKILL" });
        const result = JSON.parse(stdout) as { copies: number; wrong: unknown[]; wrongCount: number };
        assert.ok(result.copies > 1000, `${result.copies} sendfile copies`);
        assert.equal(result.wrongCount, 0, `reads that were not the whole file: ${JSON.stringify(result.wrong)}`);
      } finally {
        await loop.stop();
      }
    } finally {
      if (isProcviewMount(mountpoint)) await unmountFuse(mountpoint, { lazy: true });
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

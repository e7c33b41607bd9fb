/** Debian's LXCFS started, used and stopped the way the differential test and the benchmark do. Needs root and /dev/fuse. */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { test } from "node:test";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isLxcfsMounted, lxcfsMountpoints, startLxcfs } from "./lxcfs.ts";

test("LXCFS mounts on a private folder with a private pidfile, serves meminfo, and stop() leaves nothing behind", async () => {
  const lxcfs = await startLxcfs();
  try {
    assert.ok(isLxcfsMounted(lxcfs.mountpoint));
    assert.match(readFileSync(`${lxcfs.mountpoint}/proc/meminfo`, "utf8"), /^MemTotal:\s+\d+ kB$/m);
    // Its own pidfile, not the service's /run/lxcfs.pid.
    assert.equal(readFileSync(`${lxcfs.mountpoint}/../lxcfs.pid`, "utf8").trim(), String(lxcfs.pid));
  } finally {
    await lxcfs.stop();
  }
  assert.equal(lxcfs.running(), false);
  assert.equal(isLxcfsMounted(lxcfs.mountpoint), false);
  assert.equal(existsSync(lxcfs.mountpoint), false, "the temp folder is removed");
  await lxcfs.stop();
});

test("the LXCFS that runs is the private Debian lxcfs with its liblxcfs and libfuse3, whatever the system has installed", async () => {
  const lxcfs = await startLxcfs();
  try {
    const cache = realpathSync(fileURLToPath(new URL("../.cache/debian/bookworm", import.meta.url)));
    assert.equal(readlinkSync(`/proc/${lxcfs.pid}/exe`), join(cache, "lxcfs", "usr/bin/lxcfs"));
    assert.equal(realpathSync(lxcfs.binary), join(cache, "lxcfs", "usr/bin/lxcfs"));
    const libraries = readFileSync(`/proc/${lxcfs.pid}/maps`, "utf8")
      .split("\n")
      .map((line) => line.split(/\s+/)[5] ?? "")
      .filter((path) => /\/lib(lxcfs|fuse3)\.so/.test(path));
    const loaded = [...new Set(libraries)].map((path) => realpathSync(path));
    assert.ok(loaded.length === 2, `liblxcfs and libfuse3 loaded: ${loaded.join(", ")}`);
    for (const path of loaded) assert.ok(path.startsWith(`${cache}/`), `${path} is a private copy`);
  } finally {
    await lxcfs.stop();
  }
});

test("a test process that exits without stop() still ends its LXCFS and unmounts it", () => {
  const script = `
    import { startLxcfs } from ${JSON.stringify(fileURLToPath(new URL("./lxcfs.ts", import.meta.url)))};
    const lxcfs = await startLxcfs();
    process.stdout.write(JSON.stringify({ pid: lxcfs.pid, mountpoint: lxcfs.mountpoint }));
    process.exit(3);
  `;
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
  assert.equal(result.status, 3, result.stderr);
  const { pid, mountpoint } = JSON.parse(result.stdout) as { pid: number; mountpoint: string };
  assert.equal(isLxcfsMounted(mountpoint), false);
  assert.equal(existsSync(mountpoint), false);
  // SIGKILLed at exit; gone once its parent (the exited process) no longer holds it as a zombie.
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : "";
  assert.ok(!stat.includes("(lxcfs)") || / [ZX] /.test(stat), `lxcfs ${pid} still runs: ${stat}`);
});

test("LXCFS mounts found in mountinfo text, escaped names decoded", () => {
  const mountinfo = [
    "43 27 0:41 / /tmp/a\\040b/mnt rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw,user_id=0,group_id=0,allow_other",
    "44 27 0:42 / /tmp/pv/mnt ro,nosuid - fuse.procview procview ro,user_id=0",
    "45 27 0:43 / /var/lib/lxcfs rw - fuse.lxcfs lxcfs rw",
  ].join("\n");
  assert.deepEqual(lxcfsMountpoints(mountinfo), ["/tmp/a b/mnt", "/var/lib/lxcfs"]);
});

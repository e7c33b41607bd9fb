/**
 * Binding into another mount namespace for real (root): a process in a private mount
 * namespace (util-linux unshare) with a bind over a file, as a container has over
 * /proc/meminfo. Runs under Node and Deno (the worker thread's FFI differs).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseMountinfo } from "./mountinfo.ts";
import { bindInNamespaces } from "./namespace-binds.ts";

async function privateNamespace(script: string): Promise<ChildProcess> {
  const child = spawn("unshare", ["-m", "--propagation", "private", "sh", "-c", `${script}; echo ready; exec sleep 60`], { stdio: ["ignore", "pipe", "inherit"] });
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.on("exit", () => resolve(false));
  });
  if (!ready) {
    child.kill("SIGKILL");
    throw new Error(`unshare did not become ready: ${script}`);
  }
  return child;
}

test("replace puts the new bind beneath a dead FUSE mount and detaches it, leaves a mount that answers; attach mounts over a plain file; failures are per bind and per namespace", async () => {
  assert.equal(process.getuid?.(), 0, "needs root");
  const dir = mkdtempSync(join(tmpdir(), "procview-nsbinds-"));
  for (const [name, text] of [["old", "old view\n"], ["new", "new view\n"], ["host-a", "host a\n"], ["host-b", "host b\n"]]) writeFileSync(join(dir, name), text);
  mkdirSync(join(dir, "dead"));
  mkdirSync(join(dir, "fresh"));
  writeFileSync(join(dir, "fresh", "meminfo"), "fresh view\n");
  // A FUSE mount whose only /dev/fuse fd closes once mount(8) exits: aborted at once, like a killed server's.
  const deadFuse = `mount -i -t fuse.procview-test -o fd=3,rootmode=40000,user_id=0,group_id=0 procview-test ${dir}/dead 3<>/dev/fuse`;
  const child = await privateNamespace(`mount --bind -o ro ${dir}/old ${dir}/host-a && ${deadFuse}`);
  try {
    const pid = child.pid!;
    const namespace = readlinkSync(`/proc/${pid}/ns/mnt`);
    assert.notEqual(namespace, readlinkSync("/proc/self/ns/mnt"));
    const [outcome] = await bindInNamespaces([
      {
        pid,
        namespace,
        binds: [
          { source: join(dir, "fresh"), target: join(dir, "dead"), mode: "replace" },
          { source: join(dir, "new"), target: join(dir, "host-a"), mode: "replace" },
          { source: join(dir, "new"), target: join(dir, "host-b"), mode: "attach" },
          { source: join(dir, "missing"), target: join(dir, "old"), mode: "attach" },
        ],
      },
    ]);
    assert.deepEqual(outcome, {
      pid,
      namespace,
      ok: true,
      binds: [
        { target: join(dir, "dead"), ok: true, how: "beneath" },
        { target: join(dir, "host-a"), ok: false, code: "EEXIST", error: `the mount on ${join(dir, "host-a")} answers: left as it is` },
        { target: join(dir, "host-b"), ok: true, how: "attached" },
        { target: join(dir, "old"), ok: false, code: "ENOENT", error: `cannot copy ${join(dir, "missing")}: open_tree(${join(dir, "missing")}) failed: ENOENT` },
      ],
    });
    assert.equal(readFileSync(`/proc/${pid}/root${dir}/dead/meminfo`, "utf8"), "fresh view\n");
    assert.equal(readFileSync(`/proc/${pid}/root${dir}/host-a`, "utf8"), "old view\n", "a mount that answers is left alone");
    assert.equal(readFileSync(`/proc/${pid}/root${dir}/host-b`, "utf8"), "new view\n");
    const mounts = parseMountinfo(readFileSync(`/proc/${pid}/mountinfo`, "utf8"));
    assert.deepEqual(
      mounts.filter((m) => m.mountPoint === join(dir, "dead")).map((m) => m.fsType),
      ["ext4"],
      "the dead FUSE mount is gone, not stacked under",
    );
    assert.throws(() => writeFileSync(`/proc/${pid}/root${dir}/dead/meminfo`, "write through"), { code: "EROFS" });
    assert.throws(() => writeFileSync(`/proc/${pid}/root${dir}/host-b`, "write through"), { code: "EROFS" });
    // Our own namespace is untouched.
    assert.equal(readFileSync(join(dir, "host-a"), "utf8"), "host a\n");
    assert.equal(readFileSync(join(dir, "host-b"), "utf8"), "host b\n");

    const [wrongNamespace, gone] = await bindInNamespaces([
      { pid, namespace: "mnt:[1]", binds: [{ source: join(dir, "new"), target: join(dir, "old"), mode: "attach" }] },
      { pid: 0x3fffffff, namespace: "mnt:[1]", binds: [{ source: join(dir, "new"), target: join(dir, "old"), mode: "attach" }] },
    ]);
    assert.equal(wrongNamespace.ok, false);
    assert.equal(!wrongNamespace.ok && wrongNamespace.code, "ESRCH");
    assert.equal(gone.ok, false);
    assert.equal(!gone.ok && gone.code, "ENOENT");
  } finally {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

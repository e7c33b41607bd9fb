// The libc bindings' calls that need root, on the real kernel: a read-only bind made with
// the new mount API, and an open file copied out of another process. The pure parts and
// the error paths are in syscalls.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sys, syscalls } from "./syscalls.ts";

test("open_tree clone + mount_setattr read-only + move_mount attaches a read-only bind; umount2 detaches it (root)", () => {
  assert.equal(process.getuid?.(), 0, "mounting needs root");
  const dir = mkdtempSync(join(tmpdir(), "procview-syscalls-"));
  const source = join(dir, "source");
  const target = join(dir, "target");
  mkdirSync(source);
  mkdirSync(target);
  writeFileSync(join(source, "file"), "from the source\n");
  const calls = syscalls();
  const tree = calls.openTree(sys.AT_FDCWD, source, sys.OPEN_TREE_CLONE | sys.OPEN_TREE_CLOEXEC);
  let attached = false;
  try {
    calls.mountSetattr(tree, "", sys.AT_EMPTY_PATH, { set: sys.MOUNT_ATTR_RDONLY });
    calls.moveMount(tree, "", sys.AT_FDCWD, target, sys.MOVE_MOUNT_F_EMPTY_PATH);
    attached = true;
    assert.equal(readFileSync(join(target, "file"), "utf8"), "from the source\n");
    assert.throws(() => writeFileSync(join(target, "file"), "through the bind"), { code: "EROFS" });
  } finally {
    calls.close(tree);
    if (attached) calls.umount2(target, sys.MNT_DETACH);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => calls.umount2(target, sys.MNT_DETACH), { code: "ENOENT" });
});

test("pidfd_getfd copies another process's open file: the same file, its offset included", async () => {
  assert.equal(process.getuid?.(), 0, "pidfd_getfd on another process needs ptrace rights (root)");
  const dir = mkdtempSync(join(tmpdir(), "procview-syscalls-"));
  const file = join(dir, "file");
  writeFileSync(file, "0123456789");
  // The shell opens the file as its fd 7 and reads 4 bytes: its file offset is then 4.
  const holder = spawn("sh", ["-c", 'exec 7<"$0"; head -c 4 <&7 >/dev/null; echo ready; exec sleep 30', file], { stdio: ["ignore", "pipe", "inherit"] });
  const calls = syscalls();
  try {
    await once(holder.stdout!, "data");
    const pidfd = calls.pidfdOpen(holder.pid!);
    const copy = calls.pidfdGetfd(pidfd, 7);
    calls.close(pidfd);
    assert.equal(readlinkSync(`/proc/self/fd/${copy}`), file);
    // fdinfo, not a read: Deno's node:fs reads only fds it opened itself.
    assert.match(readFileSync(`/proc/self/fdinfo/${copy}`, "utf8"), /^pos:\s+4$/m, "the shell's offset: a reopened file would start at 0");
    calls.close(copy);
    const another = calls.pidfdOpen(holder.pid!);
    assert.throws(() => calls.pidfdGetfd(another, 99), { code: "EBADF" });
    calls.close(another);
  } finally {
    holder.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => calls.pidfdOpen(2 ** 22 + 1), { code: "ESRCH" });
});

// The same calls through Deno.dlopen (the other binding): this file again, under Deno
// (its config leaves stack tests out of `deno test`, hence --no-config).
if (!("Deno" in globalThis)) {
  test("the same calls under Deno's FFI", () => {
    const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
    const result = spawnSync(deno, ["test", "-A", "--no-config", fileURLToPath(import.meta.url)], { encoding: "utf8", timeout: 120_000 });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /2 passed \| 0 failed/);
  });
}

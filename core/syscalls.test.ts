import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeMountAttr, SyscallError, sys, syscalls } from "./syscalls.ts";

test("encodeMountAttr lays out struct mount_attr: four u64 (set, clear, propagation, userns fd)", () => {
  const bytes = encodeMountAttr({ set: sys.MOUNT_ATTR_RDONLY | sys.MOUNT_ATTR_NOSUID, clear: 0x80 });
  assert.equal(bytes.length, 32);
  const view = new DataView(bytes.buffer);
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  assert.equal(view.getBigUint64(0, littleEndian), 3n);
  assert.equal(view.getBigUint64(8, littleEndian), 0x80n);
  assert.equal(view.getBigUint64(16, littleEndian), 0n);
  assert.equal(view.getBigUint64(24, littleEndian), 0n);
});

test("a failing call throws a SyscallError naming the call and errno", () => {
  assert.throws(
    () => syscalls().setns(-1, sys.CLONE_NEWNS),
    (err: unknown) => err instanceof SyscallError && err.code === "EBADF" && err.syscall === "setns" && /setns\(-1, 0x20000\) failed: EBADF/.test(err.message),
  );
  assert.throws(() => syscalls().openTree(sys.AT_FDCWD, "/nonexistent/procview-syscalls", sys.OPEN_TREE_CLONE), { code: "ENOENT" });
  assert.throws(() => syscalls().open("/nonexistent/procview-syscalls", sys.O_RDONLY), { code: "ENOENT" });
  const fd = syscalls().open("/proc/self/ns/mnt", sys.O_RDONLY | sys.O_CLOEXEC);
  assert.ok(fd >= 0);
  syscalls().close(fd);
  assert.throws(() => syscalls().close(fd), { code: "EBADF" });
});

test("setns(CLONE_NEWNS) is refused with EINVAL in a multi-threaded process (why a thread must first unshare CLONE_FS)", () => {
  const fd = openSync("/proc/self/ns/mnt", "r");
  try {
    assert.throws(() => syscalls().setns(fd, sys.CLONE_NEWNS), { code: "EINVAL" });
  } finally {
    closeSync(fd);
  }
});

test("open_tree clone + mount_setattr read-only + move_mount attaches a read-only bind; umount2 detaches it (root)", (t) => {
  if (process.getuid?.() !== 0) {
    t.skip("mounting needs root");
    return;
  }
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

test("pidfd_getfd copies another process's open file: the same file, its offset included", async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip("pidfd_getfd on another process needs ptrace rights (root)");
    return;
  }
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
    assert.throws(() => calls.pidfdGetfd(calls.pidfdOpen(holder.pid!), 99), { code: "EBADF" });
  } finally {
    holder.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => calls.pidfdOpen(2 ** 22 + 1), { code: "ESRCH" });
});

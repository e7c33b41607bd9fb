// What needs root (mounting, pidfd_getfd on another process) is in syscalls.stack.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync } from "node:fs";
import { parseMountinfo } from "./mountinfo.ts";
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

test("deviceOf tells the device of the filesystem at a path, as the mount table lists it", () => {
  const mounts = parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
  const listed = (mountPoint: string) => mounts.filter((mount) => mount.mountPoint === mountPoint).at(-1)?.device;
  for (const path of ["/proc", "/sys"]) assert.equal(syscalls().deviceOf(path), listed(path), path);
  assert.equal(syscalls().deviceOf("/proc/self"), listed("/proc"), "a path below a mount point");
  assert.throws(() => syscalls().deviceOf("/nonexistent/procview-syscalls"), { code: "ENOENT", syscall: "statx" });
});

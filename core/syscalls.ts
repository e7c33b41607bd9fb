/**
 * Thin typed bindings to the few libc calls procview needs that neither Node nor Deno
 * expose: the new mount API (open_tree, move_mount, mount_setattr), setns, unshare,
 * umount2, close, pidfd_open + pidfd_getfd (copying an fd out of another process), the FUSE
 * device's clone ioctl, poll(2), statx(2), madvise(2) and malloc_trim(3). Under Node through the npm package koffi (prebuilt binaries, no compiler),
 * under Deno through its built-in Deno.dlopen. The single executable (scripts/build.ts)
 * carries koffi's native module as an asset: see loadEmbeddedKoffi. Calls are synchronous and run on the
 * calling thread, which matters: unshare(CLONE_FS) and setns(CLONE_NEWNS) change only
 * the calling thread (see core/namespace-binds.ts). open(2) gives raw fds for them.
 *
 * Each call throws a SyscallError carrying the errno's name (`code`, as Node's fs errors
 * do) when libc returns -1. The wrappers are glibc's (2.36 and later have every one).
 */

import { closeSync, mkdtempSync, openSync, rmSync, write as writeOnPool, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";

/** Flags and special values from the kernel's uapi headers (the same on every architecture). */
export const sys = {
  AT_FDCWD: -100,
  AT_EMPTY_PATH: 0x1000,
  AT_RECURSIVE: 0x8000,
  AT_SYMLINK_NOFOLLOW: 0x100,
  AT_NO_AUTOMOUNT: 0x800,
  AT_STATX_DONT_SYNC: 0x4000,
  OPEN_TREE_CLONE: 1,
  OPEN_TREE_CLOEXEC: 0o2000000,
  MOVE_MOUNT_F_EMPTY_PATH: 0x4,
  MOVE_MOUNT_BENEATH: 0x200,
  MOUNT_ATTR_RDONLY: 0x1,
  MOUNT_ATTR_NOSUID: 0x2,
  MOUNT_ATTR_NODEV: 0x4,
  MOUNT_ATTR_NOEXEC: 0x8,
  CLONE_FS: 0x200,
  CLONE_NEWNS: 0x20000,
  MNT_DETACH: 0x2,
  UMOUNT_NOFOLLOW: 0x8,
  O_RDONLY: 0,
  O_RDWR: 2,
  O_NONBLOCK: 0o4000,
  O_CLOEXEC: 0o2000000,
  /** _IOR(229, 0, uint32_t) of linux/fuse.h. */
  FUSE_DEV_IOC_CLONE: 0x8004e500,
  POLLIN: 0x1,
} as const;

/** struct mount_attr of mount_setattr(2). */
export interface MountAttr {
  set?: number;
  clear?: number;
  propagation?: number;
}

export interface Syscalls {
  /** open_tree(2): with OPEN_TREE_CLONE, a detached copy of the mount at `path`; returns its fd. */
  openTree(dirfd: number, path: string, flags: number): number;
  /** move_mount(2): attach (or move) a mount; with MOVE_MOUNT_F_EMPTY_PATH the source is the fd itself. */
  moveMount(fromDirfd: number, fromPath: string, toDirfd: number, toPath: string, flags: number): void;
  /** mount_setattr(2): change a mount's attributes (e.g. read-only), detached ones included. */
  mountSetattr(dirfd: number, path: string, flags: number, attr: MountAttr): void;
  /** setns(2) for the calling thread. */
  setns(fd: number, nstype: number): void;
  /** unshare(2) for the calling thread. */
  unshare(flags: number): void;
  /** umount2(2). */
  umount2(target: string, flags: number): void;
  /** open(2), for an fd the other calls take (Deno's fs hands out resource ids, not fds). */
  open(path: string, flags: number): number;
  /** close(2) of an fd these calls returned (Deno's fs cannot close fds it did not open). */
  close(fd: number): void;
  /** pidfd_open(2): an fd referring to process `pid` (Linux ≥ 5.3). */
  pidfdOpen(pid: number): number;
  /**
   * pidfd_getfd(2): a new fd in this process for the same open file as `targetFd` in the
   * pidfd's process (Linux ≥ 5.6; needs ptrace rights over it: root, CAP_SYS_PTRACE).
   */
  pidfdGetfd(pidfd: number, targetFd: number): number;
  /**
   * A new open of /dev/fuse (with `flags` such as O_NONBLOCK) attached to the connection
   * of `fd` (FUSE_DEV_IOC_CLONE): it reads the same requests, and its own file flags leave
   * `fd`'s alone.
   */
  cloneFuseDevice(fd: number, flags: number): number;
  /** poll(2) for input on `fd`: now, or off the calling thread (see InputWatch). */
  watchInput(fd: number): InputWatch;
  /**
   * The device ("major:minor") of the filesystem at `path`, from what the kernel has
   * cached (statx AT_STATX_DONT_SYNC): no request reaches a FUSE server, so a hung one
   * cannot hold the caller.
   */
  deviceOf(path: string): string;
  /** madvise(2) of this process's pages in [address, address + length). */
  madvise(address: number, length: number, advice: number): void;
  /** malloc_trim(3): gives the free pages of every malloc arena back to the system; true if there were any. */
  mallocTrim(): boolean;
  /**
   * write(2) of `data` to `fd` on a thread-pool thread, so that a write the kernel holds
   * (a FUSE notification waiting for a page another request has locked) never holds the
   * caller's thread: true once written, false if it failed.
   */
  writeOffThread(fd: number, data: Uint8Array): Promise<boolean>;
}

/** Whether an fd has input (or an error) to read, by poll(2). */
export interface InputWatch {
  /** At once, without waiting. */
  ready(): boolean;
  /**
   * Waits on a thread-pool thread, so the caller's event loop runs meanwhile: true once the
   * fd is readable or in error, false after `timeoutMs`.
   */
  wait(timeoutMs: number): Promise<boolean>;
}

export class SyscallError extends Error {
  readonly syscall: string;
  readonly errno: number;
  /** The errno's name, e.g. "EINVAL" ("E<number>" when unknown). */
  readonly code: string;

  constructor(syscall: string, errno: number, detail: string) {
    const code = errnoName(errno);
    super(`${syscall}(${detail}) failed: ${code}`);
    this.name = "SyscallError";
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** The raw libc functions, each returning libc's int, and how to read errno after one failed. */
interface Libc {
  open_tree(dirfd: number, path: string, flags: number): number;
  move_mount(fromDirfd: number, fromPath: string, toDirfd: number, toPath: string, flags: number): number;
  mount_setattr(dirfd: number, path: string, flags: number, attr: Uint8Array, size: number): number;
  setns(fd: number, nstype: number): number;
  unshare(flags: number): number;
  umount2(target: string, flags: number): number;
  open(path: string, flags: number): number;
  close(fd: number): number;
  pidfd_open(pid: number, flags: number): number;
  pidfd_getfd(pidfd: number, targetFd: number, flags: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  statx(dirfd: number, path: string, flags: number, mask: number, buffer: Uint8Array): number;
  madvise(address: number, length: number, advice: number): number;
  malloc_trim(pad: number): number;
  /** poll(2) off the calling thread; resolves with its result (-1 on failure). */
  poll_async(fds: Uint8Array, nfds: number, timeoutMs: number): Promise<number>;
  /** write(2) off the calling thread; resolves with its result (-1 on failure). */
  write_async(fd: number, data: Uint8Array, length: number): Promise<number>;
  errno(): number;
}

let loaded: Syscalls | undefined;

/** The bindings, loaded at first use (a missing libc symbol or FFI permission throws here). */
export function syscalls(): Syscalls {
  return (loaded ??= wrap(denoFfi() ? loadWithDeno(denoFfi()!) : loadWithKoffi()));
}

function wrap(libc: Libc): Syscalls {
  const check = (result: number, syscall: string, detail: string): number => {
    if (result === -1) throw new SyscallError(syscall, libc.errno(), detail);
    return result;
  };
  return {
    openTree: (dirfd, path, flags) => check(libc.open_tree(dirfd, path, flags), "open_tree", path),
    moveMount: (fromDirfd, fromPath, toDirfd, toPath, flags) => {
      check(libc.move_mount(fromDirfd, fromPath, toDirfd, toPath, flags), "move_mount", `${fromDirfd}:${fromPath} -> ${toPath}`);
    },
    mountSetattr: (dirfd, path, flags, attr) => {
      check(libc.mount_setattr(dirfd, path, flags, encodeMountAttr(attr), mountAttrSize), "mount_setattr", `${dirfd}:${path}`);
    },
    setns: (fd, nstype) => {
      check(libc.setns(fd, nstype), "setns", `${fd}, 0x${nstype.toString(16)}`);
    },
    unshare: (flags) => {
      check(libc.unshare(flags), "unshare", `0x${flags.toString(16)}`);
    },
    umount2: (target, flags) => {
      check(libc.umount2(target, flags), "umount2", target);
    },
    open: (path, flags) => check(libc.open(path, flags), "open", path),
    close: (fd) => {
      check(libc.close(fd), "close", String(fd));
    },
    pidfdOpen: (pid) => check(libc.pidfd_open(pid, 0), "pidfd_open", String(pid)),
    pidfdGetfd: (pidfd, targetFd) => check(libc.pidfd_getfd(pidfd, targetFd, 0), "pidfd_getfd", `${pidfd}, ${targetFd}`),
    cloneFuseDevice: (fd, flags) => {
      const clone = check(libc.open("/dev/fuse", sys.O_RDWR | sys.O_CLOEXEC | flags), "open", "/dev/fuse");
      const source = new Uint8Array(4);
      new Uint32Array(source.buffer)[0] = fd;
      if (libc.ioctl(clone, sys.FUSE_DEV_IOC_CLONE, source) === -1) {
        const error = new SyscallError("ioctl", libc.errno(), `${clone}, FUSE_DEV_IOC_CLONE, ${fd}`);
        libc.close(clone);
        throw error;
      }
      return clone;
    },
    watchInput: (fd) => {
      // struct pollfd { int fd; short events; short revents; }
      const pollfd = new Uint8Array(8);
      new Int32Array(pollfd.buffer, 0, 1)[0] = fd;
      new Int16Array(pollfd.buffer, 4, 1)[0] = sys.POLLIN;
      // A failed poll (EINTR) counts as ready: the caller's non-blocking read finds out.
      return {
        ready: () => libc.poll(pollfd, 1, 0) !== 0,
        wait: async (timeoutMs) => (await libc.poll_async(pollfd, 1, timeoutMs)) !== 0,
      };
    },
    deviceOf: (path) => {
      const buffer = new Uint8Array(statxSize);
      // A mask of 0: the device fields are filled whatever is asked.
      check(libc.statx(sys.AT_FDCWD, path, sys.AT_STATX_DONT_SYNC | sys.AT_NO_AUTOMOUNT, 0, buffer), "statx", path);
      const [major, minor] = new Uint32Array(buffer.buffer, statxDeviceOffset, 2);
      return `${major}:${minor}`;
    },
    madvise: (address, length, advice) => {
      check(libc.madvise(address, length, advice), "madvise", `0x${address.toString(16)}, ${length}, ${advice}`);
    },
    mallocTrim: () => libc.malloc_trim(0) === 1,
    writeOffThread: async (fd, data) => (await libc.write_async(fd, data, data.byteLength)) === data.byteLength,
  };
}

const mountAttrSize = 32;
/** struct statx is 256 bytes; its u32 stx_dev_major and stx_dev_minor sit at 136 and 140. */
const statxSize = 256;
const statxDeviceOffset = 136;

/** struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }, little or big endian as the host is. */
export function encodeMountAttr(attr: MountAttr): Uint8Array {
  const bytes = new Uint8Array(mountAttrSize);
  const view = new DataView(bytes.buffer);
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  view.setBigUint64(0, BigInt(attr.set ?? 0), littleEndian);
  view.setBigUint64(8, BigInt(attr.clear ?? 0), littleEndian);
  view.setBigUint64(16, BigInt(attr.propagation ?? 0), littleEndian);
  return bytes;
}

type KoffiFunction = ((...args: unknown[]) => number) & {
  /** The call on libuv's thread pool; the callback gets its result. */
  async(...argsThenCallback: unknown[]): void;
};
interface KoffiLibrary {
  func(signature: string): KoffiFunction;
}
interface Koffi {
  load(path: string): KoffiLibrary;
  errno(): number;
}

/** The name scripts/build.ts gives koffi's native module among the single executable's assets. */
export const koffiAsset = "koffi.node";

interface SeaModule {
  isSea(): boolean;
  getRawAsset(key: string): ArrayBuffer;
}

function loadKoffi(): Koffi {
  const sea = process.getBuiltinModule?.("node:sea") as SeaModule | undefined;
  return sea?.isSea() ? loadEmbeddedKoffi(sea) : (createRequire(import.meta.url)("koffi") as Koffi);
}

/**
 * Inside the single executable there is no node_modules to load koffi from, and a native
 * module can only be loaded from a file. So the module is written to a fresh private
 * directory (0700, under TMPDIR), opened, and unlinked at once; it is loaded through the
 * open descriptor (/proc/self/fd/N), so nothing stays on disk even after a SIGKILL, and
 * the executable stays the only file installed. TMPDIR must allow executable mappings
 * (not noexec). Each thread that needs the calls (the namespace-binds worker too) loads
 * it for itself, as Node requires of native modules per thread.
 */
function loadEmbeddedKoffi(sea: SeaModule): Koffi {
  const dir = mkdtempSync(join(tmpdir(), "procview-koffi-"));
  let fd: number;
  try {
    const file = join(dir, koffiAsset);
    writeFileSync(file, new Uint8Array(sea.getRawAsset(koffiAsset)), { mode: 0o500 });
    fd = openSync(file, "r");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  try {
    const native = { exports: {} as Koffi };
    process.dlopen(native, `/proc/self/fd/${fd}`);
    return native.exports;
  } catch (err) {
    throw new Error(`cannot load the embedded FFI module from ${tmpdir()} (a noexec TMPDIR? set TMPDIR to a directory that allows executables): ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

function loadWithKoffi(): Libc {
  const koffi = loadKoffi();
  const libc = koffi.load("libc.so.6");
  const openTree = libc.func("int open_tree(int dirfd, const char *path, unsigned int flags)");
  const moveMount = libc.func("int move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags)");
  const mountSetattr = libc.func("int mount_setattr(int dirfd, const char *path, unsigned int flags, void *attr, size_t size)");
  const setns = libc.func("int setns(int fd, int nstype)");
  const unshare = libc.func("int unshare(int flags)");
  const umount2 = libc.func("int umount2(const char *target, int flags)");
  const open = libc.func("int open(const char *path, int flags)");
  const close = libc.func("int close(int fd)");
  const pidfdOpen = libc.func("int pidfd_open(int pid, unsigned int flags)");
  const pidfdGetfd = libc.func("int pidfd_getfd(int pidfd, int targetfd, unsigned int flags)");
  // Declared with a fixed third argument: on Linux's x86-64 and arm64 ABIs an integer or
  // pointer argument is passed alike to variadic and fixed parameters.
  const ioctl = libc.func("int ioctl(int fd, unsigned long request, void *arg)");
  const poll = libc.func("int poll(void *fds, unsigned long nfds, int timeout)");
  const statx = libc.func("int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buffer)");
  // The address as an integer: it comes from /proc/self/maps, not from a pointer koffi made.
  const madvise = libc.func("int madvise(uintptr_t addr, size_t length, int advice)");
  const mallocTrim = libc.func("int malloc_trim(size_t pad)");
  return {
    open_tree: (dirfd, path, flags) => openTree(dirfd, path, flags),
    move_mount: (fromDirfd, fromPath, toDirfd, toPath, flags) => moveMount(fromDirfd, fromPath, toDirfd, toPath, flags),
    mount_setattr: (dirfd, path, flags, attr, size) => mountSetattr(dirfd, path, flags, attr, size),
    setns: (fd, nstype) => setns(fd, nstype),
    unshare: (flags) => unshare(flags),
    umount2: (target, flags) => umount2(target, flags),
    open: (path, flags) => open(path, flags),
    close: (fd) => close(fd),
    pidfd_open: (pid, flags) => pidfdOpen(pid, flags),
    pidfd_getfd: (pidfd, targetFd, flags) => pidfdGetfd(pidfd, targetFd, flags),
    ioctl: (fd, request, arg) => ioctl(fd, request, arg),
    poll: (fds, nfds, timeoutMs) => poll(fds, nfds, timeoutMs),
    statx: (dirfd, path, flags, mask, buffer) => statx(dirfd, path, flags, mask, buffer),
    madvise: (address, length, advice) => madvise(address, length, advice),
    malloc_trim: (pad) => mallocTrim(pad),
    poll_async: (fds, nfds, timeoutMs) =>
      new Promise((resolve) => poll.async(fds, nfds, timeoutMs, (err: unknown, result: number) => resolve(err ? -1 : result))),
    // libuv's own write on its pool: a cheaper hop than a foreign call's.
    write_async: (fd, data, length) => new Promise((resolve) => writeOnPool(fd, data, 0, length, null, (err, written) => resolve(err ? -1 : written))),
    errno: () => koffi.errno(),
  };
}

/** The part of Deno's FFI used here (declared locally: the project type-checks against Node's types). */
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, { name?: string; parameters: string[]; result: string; nonblocking?: boolean }>): { symbols: Record<string, (...args: unknown[]) => unknown> };
  UnsafePointerView: new (pointer: unknown) => { getInt32(offset?: number): number };
}

function denoFfi(): DenoFfi | undefined {
  return (globalThis as { Deno?: DenoFfi }).Deno;
}

function loadWithDeno(deno: DenoFfi): Libc {
  const { symbols } = deno.dlopen("libc.so.6", {
    open_tree: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    move_mount: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
    mount_setattr: { parameters: ["i32", "buffer", "u32", "buffer", "usize"], result: "i32" },
    setns: { parameters: ["i32", "i32"], result: "i32" },
    unshare: { parameters: ["i32"], result: "i32" },
    umount2: { parameters: ["buffer", "i32"], result: "i32" },
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    pidfd_open: { parameters: ["i32", "u32"], result: "i32" },
    pidfd_getfd: { parameters: ["i32", "i32", "u32"], result: "i32" },
    ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
    poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
    statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
    madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
    malloc_trim: { parameters: ["usize"], result: "i32" },
    // nonblocking: Deno runs the call on a thread of its own and returns a promise.
    poll_async: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
    write_async: { name: "write", parameters: ["i32", "buffer", "u64"], result: "i64", nonblocking: true },
    __errno_location: { parameters: [], result: "pointer" },
  });
  const encoder = new TextEncoder();
  const cString = (text: string): Uint8Array => encoder.encode(`${text}\0`);
  const call = (name: string, ...args: unknown[]): number => symbols[name](...args) as number;
  return {
    open_tree: (dirfd, path, flags) => call("open_tree", dirfd, cString(path), flags),
    move_mount: (fromDirfd, fromPath, toDirfd, toPath, flags) => call("move_mount", fromDirfd, cString(fromPath), toDirfd, cString(toPath), flags),
    mount_setattr: (dirfd, path, flags, attr, size) => call("mount_setattr", dirfd, cString(path), flags, attr, BigInt(size)),
    setns: (fd, nstype) => call("setns", fd, nstype),
    unshare: (flags) => call("unshare", flags),
    umount2: (target, flags) => call("umount2", cString(target), flags),
    open: (path, flags) => call("open", cString(path), flags),
    close: (fd) => call("close", fd),
    pidfd_open: (pid, flags) => call("pidfd_open", pid, flags),
    pidfd_getfd: (pidfd, targetFd, flags) => call("pidfd_getfd", pidfd, targetFd, flags),
    ioctl: (fd, request, arg) => call("ioctl", fd, BigInt(request), arg),
    poll: (fds, nfds, timeoutMs) => call("poll", fds, BigInt(nfds), timeoutMs),
    statx: (dirfd, path, flags, mask, buffer) => call("statx", dirfd, cString(path), flags, mask, buffer),
    madvise: (address, length, advice) => call("madvise", BigInt(address), BigInt(length), advice),
    malloc_trim: (pad) => call("malloc_trim", BigInt(pad)),
    poll_async: (fds, nfds, timeoutMs) => symbols.poll_async(fds, BigInt(nfds), timeoutMs) as Promise<number>,
    write_async: async (fd, data, length) => Number(await (symbols.write_async(fd, data, BigInt(length)) as Promise<bigint | number>)),
    // errno is per thread and the FFI call ran on this thread just before.
    errno: () => new deno.UnsafePointerView(symbols.__errno_location()).getInt32(),
  };
}

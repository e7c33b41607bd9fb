/**
 * Blocking read(2)/write(2) on the /dev/fuse fd from a worker thread.
 *
 * Node: node:fs readSync/writeSync on the fd number, which is process-wide.
 * Deno: node:fs fds are per-isolate resources, so a worker gets EBADF for the fd its
 * parent opened, although the number is the real OS fd. There the worker calls libc's
 * read/write through Deno's FFI (needs --allow-ffi, part of -A; glibc's libc.so.6).
 * Both throw errors carrying a Node-style `code` ("ENODEV", "ENOENT", ...).
 */

import { readSync, writeSync } from "node:fs";

export interface DeviceIo {
  /** Blocks until one whole request is read; returns its length. */
  read(buffer: Uint8Array): number;
  write(data: Uint8Array): void;
}

const errnoCodes: Record<number, string> = { 2: "ENOENT", 4: "EINTR", 9: "EBADF", 11: "EAGAIN", 19: "ENODEV", 22: "EINVAL" };

function errnoError(errnoValue: number, operation: string): Error {
  const code = errnoCodes[errnoValue] ?? `E${errnoValue}`;
  return Object.assign(new Error(`${code}: ${operation} on /dev/fuse failed (errno ${errnoValue})`), { code, errno: -errnoValue });
}

/** The slice of Deno's FFI this module uses (tsc knows no Deno global). */
interface DenoFfi {
  dlopen(
    path: string,
    symbols: Record<string, { parameters: string[]; result: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown> };
  UnsafePointerView: new (pointer: unknown) => { getInt32(offset?: number): number };
}

function denoFfi(): DenoFfi | undefined {
  return (globalThis as { Deno?: DenoFfi }).Deno;
}

export function openDeviceIo(fd: number): DeviceIo {
  const deno = denoFfi();
  return deno ? libcDeviceIo(deno, fd) : nodeDeviceIo(fd);
}

function nodeDeviceIo(fd: number): DeviceIo {
  return {
    read: (buffer) => readSync(fd, buffer, 0, buffer.byteLength, null),
    write: (data) => {
      writeSync(fd, data);
    },
  };
}

function libcDeviceIo(deno: DenoFfi, fd: number): DeviceIo {
  const libc = deno.dlopen("libc.so.6", {
    read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    __errno_location: { parameters: [], result: "pointer" },
  });
  const lastErrno = (): number => new deno.UnsafePointerView(libc.symbols.__errno_location()).getInt32();
  return {
    read: (buffer) => {
      const length = Number(libc.symbols.read(fd, buffer, buffer.byteLength));
      if (length < 0) throw errnoError(lastErrno(), "read");
      return length;
    },
    write: (data) => {
      // The kernel takes a reply whole or not at all.
      if (Number(libc.symbols.write(fd, data, data.byteLength)) < 0) throw errnoError(lastErrno(), "write");
    },
  };
}

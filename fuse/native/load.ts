/**
 * Loading the optional fuse-native package (libfuse 2.9 through N-API) so it works on a
 * fresh machine. Its prebuilt addon needs `libfuse.so.2`, which Debian only has with
 * libfuse2; the package bundles that library as `libfuse.so` beside the addon. Loading
 * the bundled copy first makes the dynamic linker satisfy the addon's dependency by
 * soname, with no system package and no compiler (its install script is denied in
 * package.json: it would only rebuild the same dependency on libfuse.so.2).
 */

import type { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { dirname, join } from "node:path";

/** Attributes as fuse-native converts them into a struct stat. */
export interface NativeStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  mtime: Date;
  atime: Date;
  ctime: Date;
}

/** fuse-native's callback convention: 0 or a negative errno first. */
export type StatusCallback = (status: number) => void;

/** The operations fuse-native calls, by path; every one answers through its callback. */
export interface NativeOperations {
  getattr(path: string, cb: (status: number, stat?: NativeStat) => void): void;
  readdir(path: string, cb: (status: number, names?: string[]) => void): void;
  open(path: string, flags: number, cb: (status: number, handle?: number) => void): void;
  /** Answers with the byte count read (or a negative errno) alone. */
  read(path: string, handle: number, buffer: Buffer, length: number, position: number, cb: StatusCallback): void;
  release(path: string, handle: number, cb: StatusCallback): void;
}

export interface NativeMountOptions {
  allowOther: boolean;
  fsname: string;
  subtype: string;
}

export interface NativeFuse {
  mount(cb: (err: Error | null) => void): void;
}

export interface FuseNative {
  /** A fuse-native mount that also passes `extraOptions` (libfuse -o options) to libfuse. */
  createFuse(mountpoint: string, operations: NativeOperations, options: NativeMountOptions, extraOptions: readonly string[]): NativeFuse;
  /**
   * Lets the event loop end once the mount is gone. fuse-native's own close() would also
   * run `fusermount -uz` (absent without Debian's fuse3), so callers unmount themselves.
   */
  releaseEventLoop(mountpoint: string, fuse: NativeFuse): void;
}

interface FuseClass {
  new (mountpoint: string, operations: NativeOperations, options: NativeMountOptions): NativeFuse & { _fuseOptions(): string };
}

interface FuseNativeBinding {
  fuse_native_unmount(mountpoint: string, thread: Buffer): void;
}

/** Linux's RTLD_NODELETE (not in os.constants.dlopen): Node unloads a library that registers no module unless told not to. */
const rtldNoDelete = 0x1000;

const supportedPlatform = "linux-x64";

export function loadFuseNative(): FuseNative {
  if ("Deno" in globalThis) throw new Error("fuse-native cannot run under Deno (its addon aborts there); run procview with Node, or use the kernel backend");
  const platform = `${process.platform}-${process.arch}`;
  if (platform !== supportedPlatform) throw new Error(`fuse-native ships its prebuilt binary for ${supportedPlatform} only, not ${platform}`);

  const require = createRequire(import.meta.url);
  let packageDir: string;
  try {
    packageDir = dirname(require.resolve("fuse-native/package.json"));
  } catch {
    throw new Error("the optional dependency fuse-native is not installed: run 'npm install' (it is skipped on npm install --omit=optional)");
  }
  preloadBundledLibfuse(join(packageDir, "prebuilds", supportedPlatform, "libfuse.so"));

  const packageRequire = createRequire(join(packageDir, "index.js"));
  const Fuse = packageRequire("fuse-native") as FuseClass;
  // The same addon instance fuse-native uses: Node caches native modules by path.
  const binding = (packageRequire("node-gyp-build") as (dir: string) => FuseNativeBinding)(packageDir);

  return {
    createFuse(mountpoint, operations, options, extraOptions) {
      // fuse-native builds the -o list from a fixed set of flags (no direct_io, no ro).
      class FuseWithExtraOptions extends Fuse {
        _fuseOptions(): string {
          const own = super._fuseOptions(); // "-oa,b", or "" when no flag is set
          return own === "" ? `-o${extraOptions.join(",")}` : [own, ...extraOptions].join(",");
        }
      }
      return new FuseWithExtraOptions(mountpoint, operations, options);
    },
    releaseEventLoop(mountpoint, fuse) {
      binding.fuse_native_unmount(mountpoint, (fuse as unknown as { _thread: Buffer })._thread);
    },
  };
}

function preloadBundledLibfuse(path: string): void {
  try {
    process.dlopen({ exports: {} }, path, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL | rtldNoDelete);
  } catch (err) {
    // A plain shared library is no Node module: this error comes after it was loaded.
    if (!/did not self-register/.test((err as Error).message)) throw new Error(`cannot load fuse-native's bundled libfuse ${path}: ${(err as Error).message}`);
  }
}

/**
 * A node tree (fuse/node.ts) served through fuse-native's path-based operations. fuse-native
 * never says who is calling, so every node sees the same context with pid 0: trees must
 * not depend on the reader (see caller-free-tree.ts).
 *
 * Content is built at open and reads slice that snapshot, rendered again by a read from
 * offset 0 once it was read, as in the kernel backend; the mount uses direct_io, so files
 * report size 0 like procfs and readers read to the end.
 */

import type { Logger } from "../../core/log.ts";
import { errno, FsError, renderFile, walkPath, writingOpenFlags, type DirNode, type FsNode, type RequestContext } from "../node.ts";
import type { NativeOperations, NativeStat } from "./load.ts";

/** What fuse-native cannot tell us: no caller pid, uid or gid reaches the operations. */
export const unknownCaller: RequestContext = { pid: 0, uid: 0, gid: 0 };

const maxHandle = 0xffffffff;

export interface TreeOperationsOptions {
  logger: Logger;
  /** Every node's mtime, atime and ctime. */
  time: Date;
}

export function treeOperations(root: DirNode, options: TreeOperationsOptions): NativeOperations {
  const { logger, time } = options;
  /** Each open handle's current rendering, and whether a read has touched it yet. */
  const contents = new Map<number, { bytes: Uint8Array; read: boolean }>();
  let lastHandle = 0;

  const newHandle = (): number => {
    do lastHandle = lastHandle >= maxHandle ? 1 : lastHandle + 1;
    while (contents.has(lastHandle));
    return lastHandle;
  };

  /** Runs one operation; a thrown FsError answers its errno, anything else EIO (logged), never a crash. */
  const answer = (operation: string, path: string, fail: (status: number) => void, body: () => void): void => {
    try {
      body();
    } catch (error) {
      if (error instanceof FsError) return fail(-error.errno);
      logger.error("FUSE operation failed", { operation, path, error });
      fail(-errno.EIO);
    }
  };

  const stat = (node: FsNode): NativeStat => ({
    mode: node.kind === "dir" ? 0o040000 | (node.mode ?? 0o555) : 0o100444,
    nlink: node.kind === "dir" ? 2 : 1,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: time,
    atime: time,
    ctime: time,
  });

  return {
    getattr(path, cb) {
      answer("getattr", path, cb, () => cb(0, stat(resolve(root, path))));
    },
    readdir(path, cb) {
      answer("readdir", path, cb, () => {
        const node = resolve(root, path);
        if (node.kind !== "dir") throw new FsError(errno.ENOTDIR);
        cb(0, node.list(unknownCaller));
      });
    },
    open(path, flags, cb) {
      answer("open", path, cb, () => {
        if ((flags & writingOpenFlags) !== 0) throw new FsError(errno.EROFS);
        const bytes = render(root, path);
        const handle = newHandle();
        contents.set(handle, { bytes, read: false });
        cb(0, handle);
      });
    },
    read(path, handle, buffer, length, position, cb) {
      answer("read", path, cb, () => {
        const content = contents.get(handle);
        if (content === undefined) throw new FsError(errno.EBADF);
        // A new pass from the start reads a new rendering (seq_file semantics, as the kernel backend).
        if (position === 0 && content.read) content.bytes = render(root, path, true);
        content.read = true;
        const { bytes } = content;
        const slice = bytes.subarray(Math.min(position, bytes.length), Math.min(position + length, bytes.length));
        buffer.set(slice);
        cb(slice.length);
      });
    },
    release(_path, handle, cb) {
      contents.delete(handle);
      cb(0);
    },
  };
}

/** The content of the file at `path`, rendered now (`rerender`: a re-read of an open handle, from the files). */
function render(root: DirNode, path: string, rerender = false): Uint8Array {
  return renderFile(resolve(root, path), rerender ? { ...unknownCaller, rerender } : unknownCaller);
}

/** The node at an absolute path. */
function resolve(root: DirNode, path: string): FsNode {
  return walkPath(root, path.split("/"), unknownCaller);
}

/**
 * A small tree for the FUSE server's tests: static files, a file that reports who opened it, a file that
 * throws, and directories whose entries the test controls through directories on disk.
 */

import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { FsError, errno, type AuditedDirectory, type DirNode, type FileNode, type FsNode } from "../../node.ts";

export interface FixtureOptions {
  /** Names in this directory show up as files under /dynamic, content = the file's content. */
  dynamicDir: string;
  /** Names in this directory show up as stable folders under /audited, each holding a file `name`. */
  auditedDir?: string;
}

function file(open: FileNode["open"]): FileNode {
  return { kind: "file", open };
}

function dir(children: () => Record<string, FsNode>): DirNode {
  return {
    kind: "dir",
    lookup: (name) => children()[name],
    list: () => Object.keys(children()),
  };
}

/** A backing file removed after open reads ENOENT at the next rendering, as a vanished cgroup does. */
function readBacking(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new FsError(errno.ENOENT, `${path} is gone`);
    throw err;
  }
}

export function createTree(options: unknown): DirNode {
  const { dynamicDir, auditedDir } = options as FixtureOptions;
  const dynamic: DirNode = {
    kind: "dir",
    lookup: (name) => (existsSync(join(dynamicDir, name)) ? file(() => readBacking(join(dynamicDir, name))) : undefined),
    list: () => readdirSync(dynamicDir),
  };
  const big = "0123456789abcdef".repeat(20_000);
  const fixed = {
    "hello.txt": file(() => "hello, fuse\n"),
    "whoami.txt": file((ctx) => JSON.stringify(ctx)),
    "big.txt": file(() => big),
    "broken.txt": file(() => {
      throw new Error("fixture node failure");
    }),
    "denied.txt": file(() => {
      throw new FsError(errno.EACCES, "fixture says no");
    }),
    sub: dir(() => ({ "inner.txt": file(() => "inner\n") })),
    dynamic,
    audited: {
      kind: "dir",
      lookup: (name) => (auditedDir !== undefined && existsSync(join(auditedDir, name)) ? { ...dir(() => ({ name: file(() => name) })), stable: true } : undefined),
      list: () => (auditedDir === undefined ? [] : readdirSync(auditedDir)),
    } satisfies DirNode,
  };
  return dir(() => fixed);
}

/** /audited: its folders' entries are kept until the server sees their names go. */
export function auditedDirectories(options: unknown): AuditedDirectory[] {
  const { auditedDir } = options as FixtureOptions;
  return auditedDir === undefined ? [] : [{ path: ["audited"], names: () => new Set(readdirSync(auditedDir)) }];
}

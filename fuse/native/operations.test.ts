import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createLogger } from "../../core/log.ts";
import { errno, FsError, type DirNode, type FsNode, type RequestContext } from "../node.ts";
import type { NativeOperations, NativeStat } from "./load.ts";
import { treeOperations } from "./operations.ts";

const time = new Date(1_700_000_000_000);

function fixture(): { root: DirNode; contexts: RequestContext[]; opens: { count: number } } {
  const contexts: RequestContext[] = [];
  const opens = { count: 0 };
  const files = new Map<string, FsNode>([
    ["counter", { kind: "file", open: (ctx) => (contexts.push(ctx), `open ${++opens.count}\n`) }],
    ["bytes", { kind: "file", open: () => new Uint8Array([1, 2, 3, 4, 5]) }],
    ["gone", { kind: "file", open: () => { throw new FsError(errno.ENOENT, "cgroup gone"); } }],
    ["broken", { kind: "file", open: () => { throw new Error("renderer bug"); } }],
  ]);
  const sub: DirNode = { kind: "dir", lookup: (name) => files.get(name), list: () => [...files.keys()] };
  const root: DirNode = { kind: "dir", lookup: (name) => (name === "sub" ? sub : undefined), list: () => ["sub"] };
  return { root, contexts, opens };
}

function operations(root: DirNode, logLines: string[] = []): NativeOperations {
  return treeOperations(root, { logger: createLogger({ write: (line) => logLines.push(line) }), time });
}

function getattr(ops: NativeOperations, path: string): { status: number; stat?: NativeStat } {
  let result: { status: number; stat?: NativeStat } | undefined;
  ops.getattr(path, (status, stat) => (result = { status, stat }));
  return result!;
}

function open(ops: NativeOperations, path: string, flags = 0): { status: number; handle?: number } {
  let result: { status: number; handle?: number } | undefined;
  ops.open(path, flags, (status, handle) => (result = { status, handle }));
  return result!;
}

function read(ops: NativeOperations, handle: number, length: number, position: number, path = "/sub/counter"): { status: number; bytes: Buffer } {
  const buffer = Buffer.alloc(length);
  let status: number | undefined;
  ops.read(path, handle, buffer, length, position, (result) => (status = result));
  return { status: status!, bytes: buffer.subarray(0, Math.max(status!, 0)) };
}

test("getattr: read-only directories and size-0 files with the server's time; missing paths are ENOENT", () => {
  const ops = operations(fixture().root);
  assert.deepEqual(getattr(ops, "/"), { status: 0, stat: { mode: 0o040555, nlink: 2, uid: 0, gid: 0, size: 0, mtime: time, atime: time, ctime: time } });
  assert.equal(getattr(ops, "/sub").stat?.mode, 0o040555);
  assert.equal(getattr(ops, "/sub/counter").stat?.mode, 0o100444);
  assert.equal(getattr(ops, "/sub/counter").stat?.size, 0);
  assert.equal(getattr(ops, "/nope").status, -errno.ENOENT);
  assert.equal(getattr(ops, "/sub/nope").status, -errno.ENOENT);
  assert.equal(getattr(ops, "/sub/counter/below").status, -errno.ENOTDIR);
});

test("readdir lists a directory and refuses a file", () => {
  const ops = operations(fixture().root);
  const listing = (path: string) => {
    let result: { status: number; names?: string[] } | undefined;
    ops.readdir(path, (status, names) => (result = { status, names }));
    return result!;
  };
  assert.deepEqual(listing("/"), { status: 0, names: ["sub"] });
  assert.deepEqual(listing("/sub").names, ["counter", "bytes", "gone", "broken"]);
  assert.equal(listing("/sub/counter").status, -errno.ENOTDIR);
  assert.equal(listing("/missing").status, -errno.ENOENT);
});

test("each open is its own snapshot, read in slices until the end; the context carries no caller", () => {
  const { root, contexts } = fixture();
  const ops = operations(root);
  const first = open(ops, "/sub/counter");
  const second = open(ops, "/sub/counter");
  assert.equal(first.status, 0);
  assert.notEqual(first.handle, second.handle);
  assert.equal(read(ops, first.handle!, 3, 0).bytes.toString(), "ope");
  assert.equal(read(ops, first.handle!, 100, 3).bytes.toString(), "n 1\n");
  assert.deepEqual(read(ops, first.handle!, 100, 7), { status: 0, bytes: Buffer.alloc(0) });
  assert.deepEqual(read(ops, first.handle!, 100, 1000), { status: 0, bytes: Buffer.alloc(0) });
  assert.equal(read(ops, second.handle!, 100, 0).bytes.toString(), "open 2\n");
  assert.deepEqual(contexts, [{ pid: 0, uid: 0, gid: 0 }, { pid: 0, uid: 0, gid: 0 }]);

  const bytes = open(ops, "/sub/bytes");
  assert.deepEqual([...read(ops, bytes.handle!, 2, 3, "/sub/bytes").bytes], [4, 5]);
});

test("a read from offset 0 after the snapshot was read renders again; each pass reads one rendering", () => {
  const { root, opens } = fixture();
  const ops = operations(root);
  const { handle } = open(ops, "/sub/counter");
  const pass = (): string => {
    let text = "";
    for (let position = 0; ; position++) {
      const { status, bytes } = read(ops, handle!, 1, position);
      if (status === 0) return text;
      text += bytes.toString();
    }
  };
  assert.equal(pass(), "open 1\n", "the first pass reads what open rendered");
  assert.equal(pass(), "open 2\n", "byte by byte, one rendering per pass");
  assert.equal(read(ops, handle!, 100, 0).bytes.toString(), "open 3\n", "pread at 0 renders too");
  assert.equal(opens.count, 3);
});

test("a file gone between open and a re-read answers its errno at the read, not stale or host content", () => {
  let gone = false;
  const file: FsNode = { kind: "file", open: () => { if (gone) throw new FsError(errno.ENOENT, "cgroup gone"); return "live\n"; } };
  const root: DirNode = { kind: "dir", lookup: (name) => (name === "view" ? file : undefined), list: () => ["view"] };
  const ops = operations(root);
  const { handle } = open(ops, "/view");
  assert.equal(read(ops, handle!, 100, 0, "/view").bytes.toString(), "live\n");
  gone = true;
  assert.equal(read(ops, handle!, 100, 0, "/view").status, -errno.ENOENT);
});

test("release forgets the snapshot: a later read of that handle is EBADF", () => {
  const ops = operations(fixture().root);
  const { handle } = open(ops, "/sub/counter");
  let released: number | undefined;
  ops.release("/sub/counter", handle!, (status) => (released = status));
  assert.equal(released, 0);
  assert.equal(read(ops, handle!, 10, 0).status, -errno.EBADF);
});

test("opens that would write are EROFS, directories EISDIR, and nothing is rendered for them", () => {
  const { root, opens } = fixture();
  const ops = operations(root);
  for (const flags of [0o1, 0o2, 0o1000]) assert.equal(open(ops, "/sub/counter", flags).status, -errno.EROFS, `flags ${flags.toString(8)}`);
  assert.equal(open(ops, "/sub", 0).status, -errno.EISDIR);
  assert.equal(opens.count, 0);
});

test("a node's FsError answers its errno; any other error answers EIO and is logged, never thrown", () => {
  const logLines: string[] = [];
  const ops = operations(fixture().root, logLines);
  assert.equal(open(ops, "/sub/gone").status, -errno.ENOENT);
  assert.equal(logLines.length, 0);
  assert.equal(open(ops, "/sub/broken").status, -errno.EIO);
  assert.equal(logLines.length, 1);
  assert.match(logLines[0], /"msg":"FUSE operation failed".*"operation":"open".*"path":"\/sub\/broken".*renderer bug/);
});

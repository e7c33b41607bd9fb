import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../core/log.ts";
import { FsError, errno, type DirNode, type FsNode } from "../node.ts";
import { HandleStore, createHandleStoreMemory } from "./handle-store.ts";
import { KnownSizes } from "./known-sizes.ts";
import { NodeTable, createNodeTableMemory } from "./node-table.ts";
import { opcode } from "./protocol.ts";
import { FuseSession, stopPokeName } from "./session.ts";

const encoder = new TextEncoder();
let nextUnique = 1n;

interface Caller {
  pid?: number;
  uid?: number;
  gid?: number;
}

function request(op: number, nodeId: number, body: Uint8Array = new Uint8Array(0), caller: Caller = {}): { bytes: Uint8Array; unique: bigint } {
  const unique = nextUnique++;
  const bytes = new Uint8Array(40 + body.byteLength);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, bytes.byteLength, true);
  dv.setUint32(4, op, true);
  dv.setBigUint64(8, unique, true);
  dv.setBigUint64(16, BigInt(nodeId), true);
  dv.setUint32(24, caller.uid ?? 0, true);
  dv.setUint32(28, caller.gid ?? 0, true);
  dv.setUint32(32, caller.pid ?? 4242, true);
  bytes.set(body, 40);
  return { bytes, unique };
}

function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  values.forEach((value, i) => new DataView(out.buffer).setUint32(i * 4, value, true));
  return out;
}

function u64s(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  values.forEach((value, i) => new DataView(out.buffer).setBigUint64(i * 8, BigInt(value), true));
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

const cstring = (name: string) => concat(encoder.encode(name), new Uint8Array(1));
const readIn = (fh: number, offset: number, size: number) => concat(u64s(fh, offset), u32s(size, 0), u64s(0), u32s(0, 0));

interface Reply {
  error: number;
  unique: bigint;
  body: Uint8Array;
  dv: DataView;
}

function parseReply(bytes: Uint8Array | undefined): Reply {
  assert.ok(bytes, "expected a reply");
  const header = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(header.getUint32(0, true), bytes.byteLength);
  const body = bytes.subarray(16);
  return { error: 0 - header.getInt32(4, true) || 0, unique: header.getBigUint64(8, true), body, dv: new DataView(body.buffer, body.byteOffset, body.byteLength) };
}

interface Fixture {
  session: FuseSession;
  nodes: NodeTable;
  handles: HandleStore;
  logLines: string[];
  notifications: Uint8Array[];
  beforeReply: boolean[];
  state: { opens: number; volatile: string; rootLookups: string[] };
  call(op: number, nodeId: number, body?: Uint8Array, caller?: Caller): Reply;
  lookup(parent: number, name: string): number;
  openRead(nodeId: number): string;
}

function file(open: (ctx: { pid: number; uid: number; gid: number }) => string): FsNode {
  return { kind: "file", open };
}

function fixture(memory = { nodes: createNodeTableMemory(64), handles: createHandleStoreMemory({ handles: 16, chunks: 64, chunkSize: 64 }) }, knownSizes?: KnownSizes): Fixture {
  const state = { opens: 0, volatile: "v1", rootLookups: [] as string[] };
  const children: Record<string, FsNode> = {
    "hello.txt": file(() => "hello\n"),
    "counter.txt": file(() => `opened ${++state.opens}\n`),
    "volatile.txt": file(() => state.volatile),
    "whoami.txt": file((ctx) => JSON.stringify(ctx)),
    "long.txt": file(() => "x".repeat(1000)),
    "broken.txt": file(() => {
      throw new Error("boom");
    }),
    "denied.txt": file(() => {
      throw new FsError(errno.EACCES);
    }),
    sub: { kind: "dir", lookup: (name) => (name === "inner" ? file(() => "inner") : undefined), list: () => ["inner"] },
  };
  const root: DirNode = {
    kind: "dir",
    lookup: (name) => {
      state.rootLookups.push(name);
      return children[name];
    },
    list: () => [...Object.keys(children), "vanished"],
  };
  const logLines: string[] = [];
  const nodes = new NodeTable(memory.nodes);
  const handles = new HandleStore(memory.handles);
  const notifications: Uint8Array[] = [];
  /** For each notification, whether it was to go out before its request's reply. */
  const beforeReply: boolean[] = [];
  const session = new FuseSession({
    root,
    nodes,
    handles,
    logger: createLogger({ write: (line) => logLines.push(line) }),
    timeSeconds: 1_700_000_000,
    notify: (message, before) => {
      notifications.push(message);
      beforeReply.push(before);
    },
    // The worker names a caller's cgroup; here each uid stands for one.
    readerOf: (ctx) => `uid ${ctx.uid}`,
    knownSizes,
  });
  const call = (op: number, nodeId: number, body?: Uint8Array, caller?: Caller) => {
    const req = request(op, nodeId, body, caller);
    const reply = parseReply(session.handle(req.bytes));
    assert.equal(reply.unique, req.unique);
    return reply;
  };
  const lookup = (parent: number, name: string) => {
    const reply = call(opcode.LOOKUP, parent, cstring(name));
    assert.equal(reply.error, 0, `lookup ${name}`);
    return Number(reply.dv.getBigUint64(0, true));
  };
  const openRead = (nodeId: number) => {
    const opened = call(opcode.OPEN, nodeId, u32s(0, 0));
    assert.equal(opened.error, 0);
    const fh = Number(opened.dv.getBigUint64(0, true));
    const data = call(opcode.READ, nodeId, readIn(fh, 0, 4096));
    call(opcode.RELEASE, nodeId, concat(u64s(fh), u32s(0, 0), u64s(0)));
    return new TextDecoder().decode(data.body);
  };
  return { session, nodes, handles, logLines, notifications, beforeReply, state, call, lookup, openRead };
}

test("INIT: answers 7.31 at most and keeps only flags it implements", () => {
  const { call } = fixture();
  const reply = call(opcode.INIT, 0, u32s(7, 42, 1 << 20, 0xffffffff));
  assert.equal(reply.error, 0);
  assert.equal(reply.body.byteLength, 64);
  assert.equal(reply.dv.getUint32(0, true), 7);
  assert.equal(reply.dv.getUint32(4, true), 31);
  assert.equal(reply.dv.getUint32(8, true), 128 * 1024, "max_readahead capped");
  assert.equal(reply.dv.getUint32(12, true), (1 << 0) | (1 << 18), "ASYNC_READ | PARALLEL_DIROPS");
  assert.equal(reply.dv.getUint32(20, true), 128 * 1024, "max_write");
  assert.equal(call(opcode.INIT, 0, u32s(7, 28, 4096, 1)).dv.getUint32(4, true), 28, "an older kernel gets its own minor");
});

test("INIT: a kernel protocol too old or of another major is refused", () => {
  const { call } = fixture();
  assert.equal(call(opcode.INIT, 0, u32s(7, 11, 0, 0)).error, errno.EPROTO);
  assert.equal(call(opcode.INIT, 0, u32s(8, 0, 0, 0)).error, errno.EPROTO);
});

test("LOOKUP: files 0444 and dirs 0555, size 0, same id for the same name", () => {
  const { call, lookup } = fixture();
  const reply = call(opcode.LOOKUP, 1, cstring("hello.txt"));
  const nodeId = Number(reply.dv.getBigUint64(0, true));
  assert.ok(nodeId > 1);
  assert.equal(reply.dv.getBigUint64(16, true), 0n, "entry_valid seconds");
  assert.equal(reply.dv.getUint32(32, true), 500_000_000, "entry_valid 0.5 s");
  assert.equal(reply.dv.getBigUint64(40, true), BigInt(nodeId), "ino is the node id");
  assert.equal(reply.dv.getBigUint64(48, true), 0n, "size 0");
  assert.equal(reply.dv.getUint32(100, true), 0o100444);
  assert.equal(lookup(1, "hello.txt"), nodeId);
  const sub = call(opcode.LOOKUP, 1, cstring("sub"));
  assert.equal(sub.dv.getUint32(100, true), 0o040555);
  assert.equal(sub.dv.getUint32(104, true), 2, "nlink");
});

test("every node's attributes are valid for a minute, a file's too: its size comes from each open's store", () => {
  const { call } = fixture();
  const attrValidSeconds = (reply: { dv: DataView }, offset: number) => Number(reply.dv.getBigUint64(offset, true)) + reply.dv.getUint32(offset + (offset === 0 ? 8 : 12), true) / 1e9;
  assert.equal(attrValidSeconds(call(opcode.LOOKUP, 1, cstring("sub")), 24), 60, "LOOKUP of a directory");
  assert.equal(attrValidSeconds(call(opcode.LOOKUP, 1, cstring("hello.txt")), 24), 60, "LOOKUP of a file");
  assert.equal(attrValidSeconds(call(opcode.GETATTR, 1, u32s(0, 0, 0, 0)), 0), 60, "GETATTR of the root");
  const file = Number(call(opcode.LOOKUP, 1, cstring("hello.txt")).dv.getBigUint64(0, true));
  assert.equal(attrValidSeconds(call(opcode.GETATTR, file, u32s(0, 0, 0, 0)), 0), 60, "GETATTR of a file");
});

test("LOOKUP: a missing name is ENOENT (no entry, so nothing cached); a file is not a directory", () => {
  const { call, lookup, nodes } = fixture();
  const missing = call(opcode.LOOKUP, 1, cstring("nope"));
  assert.equal(missing.error, errno.ENOENT);
  assert.equal(missing.body.byteLength, 0);
  assert.equal(nodes.liveCount, 1, "no id allocated for a miss");
  assert.equal(call(opcode.LOOKUP, lookup(1, "hello.txt"), cstring("x")).error, errno.ENOTDIR);
  assert.equal(call(opcode.LOOKUP, 999, cstring("x")).error, errno.ENOENT, "unknown parent id");
});

test("the stop poke name is answered without asking the tree", () => {
  const { call, state } = fixture();
  assert.equal(call(opcode.LOOKUP, 1, cstring(stopPokeName)).error, errno.ENOENT);
  assert.deepEqual(state.rootLookups, []);
});

test("GETATTR: root, looked-up nodes, unknown ids", () => {
  const { call, lookup } = fixture();
  const root = call(opcode.GETATTR, 1, u32s(0, 0, 0, 0));
  assert.equal(root.error, 0);
  assert.equal(root.body.byteLength, 104);
  assert.equal(root.dv.getUint32(16 + 60, true), 0o040555);
  const inner = lookup(lookup(1, "sub"), "inner");
  const attr = call(opcode.GETATTR, inner, u32s(0, 0, 0, 0));
  assert.equal(attr.dv.getBigUint64(16, true), BigInt(inner));
  assert.equal(attr.dv.getUint32(16 + 60, true), 0o100444);
  assert.equal(attr.dv.getBigUint64(16 + 32, true), 1_700_000_000n, "mtime");
  assert.equal(call(opcode.GETATTR, 4000, u32s(0, 0, 0, 0)).error, errno.ENOENT);
});

test("files report size 0, except to a process holding them open: the length of its rendering (for mmap)", () => {
  const { call, lookup } = fixture();
  const nodeId = lookup(1, "long.txt");
  const sizeFor = (pid: number) => call(opcode.GETATTR, nodeId, u32s(0, 0, 0, 0), { pid }).dv.getBigUint64(24, true);
  assert.equal(sizeFor(10), 0n);
  const fh = Number(call(opcode.OPEN, nodeId, u32s(0, 0), { pid: 10 }).dv.getBigUint64(0, true));
  assert.equal(sizeFor(10), 1000n);
  assert.equal(sizeFor(11), 0n, "everyone else sees procfs's 0");
  assert.equal(call(opcode.LOOKUP, 1, cstring("long.txt"), { pid: 10 }).dv.getBigUint64(48, true), 1000n, "LOOKUP replies agree");
  call(opcode.RELEASE, nodeId, concat(u64s(fh), u32s(0, 0), u64s(0)));
  assert.equal(sizeFor(10), 0n);
  assert.equal(call(opcode.GETATTR, 1, u32s(0, 0, 0, 0), { pid: 10 }).dv.getBigUint64(24, true), 0n, "directories 0");
});

test("a reader past its bound of open views gets EMFILE alone, logged once; others keep opening", () => {
  const memory = { nodes: createNodeTableMemory(64), handles: createHandleStoreMemory({ handles: 64, chunks: 64, chunkSize: 64, handlesPerReader: 3 }) };
  const { call, lookup, logLines } = fixture(memory);
  const nodeId = lookup(1, "hello.txt");
  const open = (uid: number) => call(opcode.OPEN, nodeId, u32s(0, 0), { uid, pid: 500 + uid });
  for (let i = 0; i < 3; i++) assert.equal(open(65534).error, 0);
  assert.equal(open(65534).error, errno.EMFILE);
  assert.equal(call(opcode.OPENDIR, 1, u32s(0, 0), { uid: 65534 }).error, errno.EMFILE, "directory handles count too");
  for (let i = 0; i < 3; i++) assert.equal(open(0).error, 0, "root still opens");
  assert.equal(logLines.length, 1, "one line for the reader, not one per refusal");
  const record = JSON.parse(logLines[0]) as Record<string, unknown>;
  assert.deepEqual([record.level, record.reader, record.pid, record.limit, record.errno], ["warn", "uid 65534", 65534 + 500, 3, errno.EMFILE]);
});

test("OPEN builds the content once, READs slice that snapshot, direct_io is set", () => {
  const { call, lookup, state } = fixture();
  const nodeId = lookup(1, "volatile.txt");
  const opened = call(opcode.OPEN, nodeId, u32s(0, 0));
  assert.equal(opened.dv.getUint32(8, true) & 1, 1, "FOPEN_DIRECT_IO");
  const fh = Number(opened.dv.getBigUint64(0, true));
  state.volatile = "v2 changed";
  assert.equal(new TextDecoder().decode(call(opcode.READ, nodeId, readIn(fh, 0, 100)).body), "v1");
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 2, 100)).body.byteLength, 0, "EOF");
  assert.equal(call(opcode.RELEASE, nodeId, concat(u64s(fh), u32s(0, 0), u64s(0))).error, 0);
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 0, 100)).error, errno.EBADF);
  const counter = lookup(1, "counter.txt");
  const first = call(opcode.OPEN, counter, u32s(0, 0));
  const fh1 = Number(first.dv.getBigUint64(0, true));
  call(opcode.READ, counter, readIn(fh1, 0, 3));
  call(opcode.READ, counter, readIn(fh1, 3, 100));
  assert.equal(state.opens, 1, "reads do not rebuild");
});

/** A NOTIFY_STORE's node, offset and data. */
function storeOf(message: Uint8Array): { nodeId: bigint; offset: bigint; data: string } {
  const dv = new DataView(message.buffer, message.byteOffset);
  assert.equal(dv.getUint32(0, true), message.byteLength);
  assert.equal(dv.getInt32(4, true), 4, "FUSE_NOTIFY_STORE");
  assert.equal(dv.getBigUint64(8, true), 0n, "unique 0: unsolicited");
  assert.equal(dv.getUint32(32, true), message.byteLength - 40);
  return { nodeId: dv.getBigUint64(16, true), offset: dv.getBigUint64(24, true), data: new TextDecoder().decode(message.subarray(40)) };
}

test("OPEN tells the kernel the rendering's size (a one-byte NOTIFY_STORE) before its reply, so sendfile readers read it all", () => {
  const { call, lookup, notifications, beforeReply, state } = fixture();
  const nodeId = lookup(1, "hello.txt");
  assert.equal(notifications.length, 0, "LOOKUP builds nothing");
  assert.equal(call(opcode.OPEN, nodeId, u32s(0, 0)).error, 0);
  assert.deepEqual(beforeReply, [true], "the opener's sendfile must find the size the store sets");
  // Its last byte, not the content: the page stays for the reader's own READ to fill.
  assert.deepEqual(storeOf(notifications[0]), { nodeId: BigInt(nodeId), offset: 5n, data: "\n" });
  // A last byte that would start a page (here the first) goes one past the end: a store at a page's start can mark the page read.
  state.volatile = "x";
  const volatile = lookup(1, "volatile.txt");
  assert.equal(call(opcode.OPEN, volatile, u32s(0, 0)).error, 0);
  assert.deepEqual(storeOf(notifications[1]), { nodeId: BigInt(volatile), offset: 1n, data: "x" });
  state.volatile = "";
  assert.equal(call(opcode.OPEN, volatile, u32s(0, 0)).error, 0);
  assert.equal(call(opcode.OPEN, lookup(1, "denied.txt"), u32s(0, 0)).error, errno.EACCES);
  assert.equal(notifications.length, 2, "an empty rendering or a failed build stores nothing");
});

test("where one thread sends every reply, OPEN stores only while the kernel may know the file shorter than its rendering", () => {
  const knownSizes = new KnownSizes();
  const { call, lookup, notifications, openRead, state } = fixture(undefined, knownSizes);
  const nodeId = lookup(1, "volatile.txt");
  const open = () => {
    const opened = call(opcode.OPEN, nodeId, u32s(0, 0));
    assert.equal(opened.error, 0);
    call(opcode.RELEASE, nodeId, concat(u64s(Number(opened.dv.getBigUint64(0, true))), u32s(0, 0), u64s(0)));
  };
  open();
  assert.equal(notifications.length, 1, "nothing known yet");
  open();
  assert.equal(notifications.length, 2, "a store not written yet makes nothing known");
  knownSizes.written(notifications[1]);
  open();
  assert.equal(notifications.length, 2, "the kernel holds 2 bytes: the store would change nothing");
  state.volatile = "v12";
  open();
  assert.equal(notifications.length, 3, "a longer rendering stores");
  knownSizes.written(notifications[2]);
  assert.equal(openRead(nodeId), "v12");
  open();
  assert.equal(notifications.length, 3, "a READ as long as the file shrinks nothing");

  // A shrinking reply sent while a store waits: the store may have landed before it.
  state.volatile = "v1234";
  open();
  assert.equal(call(opcode.GETATTR, nodeId, u32s(0, 0, 0, 0)).error, 0);
  knownSizes.written(notifications[3]);
  open();
  assert.equal(notifications.length, 5, "the GETATTR's size 0 may have come after the store");
  knownSizes.written(notifications[4]);
  const fh = Number(call(opcode.OPEN, nodeId, u32s(0, 0)).dv.getBigUint64(0, true));
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 0, 2)).body.byteLength, 2);
  open();
  assert.equal(notifications.length, 5, "a READ that got all it asked for shrinks nothing");
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 3, 100)).body.byteLength, 2);
  open();
  assert.equal(notifications.length, 5, "a short READ ending where the file does shrinks nothing");
  state.volatile = "v12";
  open();
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 0, 100)).body.byteLength, 3, "the open handle renders again at offset 0");
  state.volatile = "v1234";
  open();
  assert.equal(notifications.length, 5, "a READ of part of a page is a direct read: the kernel still holds 5 bytes");
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 0, 2 * 4096)).body.byteLength, 5);
  state.volatile = "v12";
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 0, 2 * 4096)).body.byteLength, 3);
  state.volatile = "v1234";
  open();
  assert.equal(notifications.length, 5, "whole pages past the page of any size the kernel was told: a direct read too");
  state.volatile = "v12";
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 0, 4096)).body.byteLength, 3);
  state.volatile = "v1234";
  open();
  assert.equal(notifications.length, 6, "a short READ of the file's page may be a page read, which ended the file at 3 bytes");
});

test("READ from offset 0 after the snapshot was read renders again (seq_file); one rendering per pass", () => {
  const { call, lookup, state, notifications, beforeReply } = fixture();
  const nodeId = lookup(1, "counter.txt");
  const fh = Number(call(opcode.OPEN, nodeId, u32s(0, 0)).dv.getBigUint64(0, true));
  const pass = (): string => {
    let text = "";
    for (let offset = 0; ; offset++) {
      const reply = call(opcode.READ, nodeId, readIn(fh, offset, 1));
      assert.equal(reply.error, 0);
      if (reply.body.byteLength === 0) return text;
      text += new TextDecoder().decode(reply.body);
    }
  };
  assert.equal(pass(), "opened 1\n", "the first read uses what OPEN rendered");
  assert.equal(state.opens, 1);
  assert.equal(pass(), "opened 2\n", "byte by byte across a re-render: one rendering per pass");
  assert.equal(new TextDecoder().decode(call(opcode.READ, nodeId, readIn(fh, 0, 100)).body), "opened 3\n", "pread at 0");
  assert.equal(notifications.length, 3, "each rendering's size goes to the kernel for sendfile readers");
  // A page read locks the page its READ fills: a store into it must wait for the reply, not hold it up.
  assert.deepEqual(beforeReply, [true, false, false], "a READ's store follows its reply");
});

test("READ at 0 renders for the reading caller; a view gone meanwhile answers its errno, not old content", () => {
  const { call, lookup, state } = fixture();
  const whoami = lookup(1, "whoami.txt");
  const fh = Number(call(opcode.OPEN, whoami, u32s(0, 0), { pid: 10 }).dv.getBigUint64(0, true));
  assert.match(new TextDecoder().decode(call(opcode.READ, whoami, readIn(fh, 0, 100), { pid: 11 }).body), /"pid":10/);
  assert.match(new TextDecoder().decode(call(opcode.READ, whoami, readIn(fh, 0, 100), { pid: 11 }).body), /"pid":11/);

  const volatile = lookup(1, "volatile.txt");
  const vfh = Number(call(opcode.OPEN, volatile, u32s(0, 0)).dv.getBigUint64(0, true));
  assert.equal(new TextDecoder().decode(call(opcode.READ, volatile, readIn(vfh, 0, 100)).body), "v1");
  state.volatile = "v2";
  assert.equal(new TextDecoder().decode(call(opcode.READ, volatile, readIn(vfh, 0, 100)).body), "v2");
  const denied = lookup(1, "denied.txt");
  // The node id now resolves to a file that refuses to render: the READ gets that errno.
  const dfh = Number(call(opcode.OPEN, volatile, u32s(0, 0)).dv.getBigUint64(0, true));
  call(opcode.READ, volatile, readIn(dfh, 0, 100));
  assert.equal(call(opcode.READ, denied, readIn(dfh, 0, 100)).error, errno.EACCES);
  assert.equal(call(opcode.READ, volatile, readIn(999_999, 0, 100)).error, errno.EBADF);
});

test("READ slices at offset and size", () => {
  const { call, lookup } = fixture();
  const nodeId = lookup(1, "long.txt");
  const fh = Number(call(opcode.OPEN, nodeId, u32s(0, 0)).dv.getBigUint64(0, true));
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 0, 300)).body.byteLength, 300);
  assert.equal(call(opcode.READ, nodeId, readIn(fh, 900, 300)).body.byteLength, 100);
});

test("OPEN: write access is EROFS, a directory is EISDIR", () => {
  const { call, lookup } = fixture();
  const nodeId = lookup(1, "hello.txt");
  assert.equal(call(opcode.OPEN, nodeId, u32s(1, 0)).error, errno.EROFS, "O_WRONLY");
  assert.equal(call(opcode.OPEN, nodeId, u32s(2, 0)).error, errno.EROFS, "O_RDWR");
  assert.equal(call(opcode.OPEN, nodeId, u32s(0o1000, 0)).error, errno.EROFS, "O_TRUNC");
  assert.equal(call(opcode.OPEN, lookup(1, "sub"), u32s(0, 0)).error, errno.EISDIR);
});

test("a node that throws answers EIO and is logged; an FsError answers its errno quietly", () => {
  const { call, lookup, logLines, openRead } = fixture();
  assert.equal(call(opcode.OPEN, lookup(1, "broken.txt"), u32s(0, 0)).error, errno.EIO);
  assert.equal(logLines.length, 1);
  assert.match(logLines[0], /"level":"error".*"opcode":14.*"boom"/);
  assert.equal(call(opcode.OPEN, lookup(1, "denied.txt"), u32s(0, 0)).error, errno.EACCES);
  assert.equal(logLines.length, 1);
  assert.equal(openRead(lookup(1, "hello.txt")), "hello\n", "still serving");
});

test("the request's pid, uid and gid reach the node", () => {
  const { call, lookup } = fixture();
  const nodeId = lookup(1, "whoami.txt");
  const fh = Number(call(opcode.OPEN, nodeId, u32s(0, 0), { pid: 777, uid: 65534, gid: 65533 }).dv.getBigUint64(0, true));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(call(opcode.READ, nodeId, readIn(fh, 0, 100)).body)), { pid: 777, uid: 65534, gid: 65533 });
});

interface Dirent {
  ino: number;
  next: number;
  type: number;
  name: string;
}

function parseDirents(body: Uint8Array): Dirent[] {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const entries: Dirent[] = [];
  for (let at = 0; at < body.byteLength; ) {
    const nameLength = dv.getUint32(at + 16, true);
    entries.push({
      ino: Number(dv.getBigUint64(at, true)),
      next: Number(dv.getBigUint64(at + 8, true)),
      type: dv.getUint32(at + 20, true),
      name: new TextDecoder().decode(body.subarray(at + 24, at + 24 + nameLength)),
    });
    at += (24 + nameLength + 7) & ~7;
  }
  return entries;
}

test("OPENDIR/READDIR: dot entries, types, whole records per reply, offsets resume", () => {
  const { call } = fixture();
  const opened = call(opcode.OPENDIR, 1, u32s(0, 0));
  assert.equal(opened.error, 0);
  const fh = Number(opened.dv.getBigUint64(0, true));
  const all = parseDirents(call(opcode.READDIR, 1, readIn(fh, 0, 4096)).body);
  assert.deepEqual(
    all.map((entry) => entry.name),
    [".", "..", "hello.txt", "counter.txt", "volatile.txt", "whoami.txt", "long.txt", "broken.txt", "denied.txt", "sub"],
    "a listed name the tree cannot look up is left out",
  );
  assert.equal(all.find((entry) => entry.name === "sub")?.type, 4, "DT_DIR");
  assert.equal(all.find((entry) => entry.name === "hello.txt")?.type, 8, "DT_REG");
  assert.equal(all[0].ino, 1);
  assert.ok(all.every((entry) => entry.ino > 0));
  // A buffer of 70 bytes holds two 32-byte records, never a cut one.
  const names: string[] = [];
  for (let offset = 0; ; ) {
    const page = parseDirents(call(opcode.READDIR, 1, readIn(fh, offset, 70)).body);
    if (page.length === 0) break;
    assert.ok(page.length <= 2);
    names.push(...page.map((entry) => entry.name));
    offset = page[page.length - 1].next;
  }
  assert.deepEqual(names, all.map((entry) => entry.name));
  assert.equal(call(opcode.RELEASEDIR, 1, concat(u64s(fh), u32s(0, 0), u64s(0))).error, 0);
  assert.equal(call(opcode.READDIR, 1, readIn(fh, 0, 4096)).error, errno.EBADF);
  assert.equal(call(opcode.OPENDIR, 999, u32s(0, 0)).error, errno.ENOENT);
});

test("write-ish opcodes are EROFS, the rest ENOSYS, and unknown opcodes ENOSYS", () => {
  const { call } = fixture();
  for (const op of [opcode.SETATTR, opcode.WRITE, opcode.CREATE, opcode.MKNOD, opcode.MKDIR, opcode.UNLINK, opcode.RMDIR, opcode.RENAME, opcode.RENAME2, opcode.LINK, opcode.SYMLINK, opcode.SETXATTR, opcode.REMOVEXATTR, opcode.FALLOCATE, opcode.COPY_FILE_RANGE, opcode.TMPFILE]) {
    assert.equal(call(op, 1, new Uint8Array(64)).error, errno.EROFS, `opcode ${op}`);
  }
  for (const op of [opcode.FLUSH, opcode.FSYNC, opcode.FSYNCDIR, opcode.GETXATTR, opcode.LISTXATTR, opcode.GETLK, opcode.IOCTL, opcode.READDIRPLUS, 999]) {
    assert.equal(call(op, 1, new Uint8Array(64)).error, errno.ENOSYS, `opcode ${op}`);
  }
});

test("STATFS and ACCESS", () => {
  const { call } = fixture();
  const statfs = call(opcode.STATFS, 1);
  assert.equal(statfs.error, 0);
  assert.equal(statfs.dv.getUint32(44, true), 255);
  assert.equal(call(opcode.ACCESS, 1, u32s(4, 0)).error, 0);
  assert.equal(call(opcode.ACCESS, 555, u32s(4, 0)).error, errno.ENOENT);
});

test("FORGET, BATCH_FORGET and INTERRUPT get no reply; forgotten ids are freed", () => {
  const { session, lookup, nodes } = fixture();
  const a = lookup(1, "hello.txt");
  lookup(1, "hello.txt");
  const sub = lookup(1, "sub");
  const inner = lookup(sub, "inner");
  assert.equal(nodes.liveCount, 4);
  assert.equal(session.handle(request(opcode.FORGET, a, u64s(2)).bytes), undefined);
  assert.equal(nodes.liveCount, 3);
  assert.equal(session.handle(request(opcode.BATCH_FORGET, 0, concat(u32s(2, 0), u64s(inner, 1, sub, 1))).bytes), undefined);
  assert.equal(nodes.liveCount, 1);
  assert.equal(session.handle(request(opcode.INTERRUPT, 0, u64s(12)).bytes), undefined);
});

test("a malformed request is dropped and logged, and the session keeps serving", () => {
  const { session, logLines, openRead, lookup } = fixture();
  assert.equal(session.handle(new Uint8Array(12)), undefined);
  assert.match(logLines[0], /malformed FUSE request/);
  const truncatedRead = request(opcode.READ, 1, new Uint8Array(4));
  assert.equal(parseReply(session.handle(truncatedRead.bytes)).error, errno.EIO);
  assert.equal(openRead(lookup(1, "hello.txt")), "hello\n");
});

test("two sessions on shared tables act as one server (OPEN on one worker, READ on another)", () => {
  const memory = { nodes: createNodeTableMemory(64), handles: createHandleStoreMemory({ handles: 16, chunks: 64, chunkSize: 64 }) };
  const one = fixture(memory);
  const other = fixture(memory);
  const nodeId = one.lookup(1, "hello.txt");
  assert.equal(other.call(opcode.GETATTR, nodeId, u32s(0, 0, 0, 0)).error, 0, "the other worker resolves the id");
  const fh = Number(one.call(opcode.OPEN, nodeId, u32s(0, 0)).dv.getBigUint64(0, true));
  assert.equal(new TextDecoder().decode(other.call(opcode.READ, nodeId, readIn(fh, 0, 100)).body), "hello\n");
  assert.equal(other.call(opcode.RELEASE, nodeId, concat(u64s(fh), u32s(0, 0), u64s(0))).error, 0);
  assert.equal(one.handles.openCount, 0);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  decodeBatchForget,
  decodeForgetCount,
  decodeInitRequest,
  decodeName,
  decodeOpenFlags,
  decodeReadRequest,
  decodeReleaseHandle,
  direntSize,
  encodeAttrReply,
  encodeEntryReply,
  encodeInitReply,
  encodeNotifyInvalEntry,
  encodeOpenReply,
  encodeReply,
  encodeStatfsReply,
  parseRequestHeader,
  writeDirent,
} from "./protocol.ts";

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));
}

test("request header: 40 bytes decoded field by field", () => {
  const request = fromHex(`
    2c000000 01000000 0807060504030201 0500000000000000
    e8030000 e9030000 39300000 00000000
    61626300`);
  assert.deepEqual(parseRequestHeader(request), {
    length: 44,
    opcode: 1,
    unique: 0x0102030405060708n,
    nodeId: 5,
    uid: 1000,
    gid: 1001,
    pid: 12345,
  });
});

test("request header: node ids above 2^32 keep their high word", () => {
  const request = new Uint8Array(40);
  const dv = new DataView(request.buffer);
  dv.setUint32(0, 40, true);
  dv.setUint32(16, 7, true);
  dv.setUint32(20, 2, true);
  assert.equal(parseRequestHeader(request).nodeId, 2 * 2 ** 32 + 7);
});

test("request header: short or inconsistent requests are refused", () => {
  assert.throws(() => parseRequestHeader(new Uint8Array(39)), /shorter than its 40-byte header/);
  const request = new Uint8Array(48);
  new DataView(request.buffer).setUint32(0, 40, true);
  assert.throws(() => parseRequestHeader(request), /says 40 bytes but 48 were read/);
});

test("reply: header carries length, negative errno and unique", () => {
  assert.equal(hex(encodeReply(0x0102030405060708n, 2)), "10000000" + "feffffff" + "0807060504030201");
  assert.equal(hex(encodeReply(9n, 0, fromHex("aabb"))), "12000000" + "00000000" + "0900000000000000" + "aabb");
});

test("reply: an error reply never carries a body", () => {
  assert.equal(encodeReply(1n, 5, new Uint8Array(8)).byteLength, 16);
});

test("INIT: request fields and the 64-byte 7.31 reply", () => {
  const init = decodeInitRequest(fromHex("07000000 2a000000 00000200 fbffff33"));
  assert.deepEqual(init, { major: 7, minor: 42, maxReadahead: 131072, flags: 0x33fffffb });
  const reply = encodeInitReply({
    minor: 31,
    maxReadahead: 131072,
    flags: 0x40001,
    maxBackground: 16,
    congestionThreshold: 12,
    maxWrite: 131072,
    timeGranularity: 1,
    maxPages: 0,
  });
  assert.equal(reply.byteLength, 64);
  assert.equal(hex(reply.subarray(0, 32)), "07000000" + "1f000000" + "00000200" + "01000400" + "1000" + "0c00" + "00000200" + "01000000" + "0000" + "0000");
  assert.ok(reply.subarray(32).every((byte) => byte === 0));
});

const attr = { ino: 3, size: 0, mode: 0o100444, nlink: 1, uid: 0, gid: 0, timeSeconds: 1_700_000_000 };

test("entry reply: 128 bytes, timeouts split into seconds and nanoseconds, attr at 40", () => {
  const reply = encodeEntryReply({ nodeId: 3, generation: 2, entryValidMs: 1500, attrValidMs: 500, attr });
  assert.equal(reply.byteLength, 128);
  const dv = new DataView(reply.buffer);
  assert.equal(dv.getBigUint64(0, true), 3n);
  assert.equal(dv.getBigUint64(8, true), 2n);
  assert.equal(dv.getBigUint64(16, true), 1n);
  assert.equal(dv.getBigUint64(24, true), 0n);
  assert.equal(dv.getUint32(32, true), 500_000_000);
  assert.equal(dv.getUint32(36, true), 500_000_000);
  assert.equal(dv.getBigUint64(40, true), 3n, "attr.ino");
  assert.equal(dv.getBigUint64(48, true), 0n, "attr.size");
  assert.equal(dv.getBigUint64(40 + 32, true), 1_700_000_000n, "attr.mtime");
  assert.equal(dv.getUint32(40 + 60, true), 0o100444, "attr.mode");
  assert.equal(dv.getUint32(40 + 64, true), 1, "attr.nlink");
  assert.equal(dv.getUint32(40 + 80, true), 4096, "attr.blksize");
});

test("attr reply: 104 bytes, attr at 16", () => {
  const reply = encodeAttrReply(500, { ...attr, mode: 0o040555, nlink: 2 });
  assert.equal(reply.byteLength, 104);
  const dv = new DataView(reply.buffer);
  assert.equal(dv.getBigUint64(0, true), 0n);
  assert.equal(dv.getUint32(8, true), 500_000_000);
  assert.equal(dv.getUint32(16 + 60, true), 0o040555);
  assert.equal(dv.getUint32(16 + 64, true), 2);
});

test("open and statfs replies", () => {
  assert.equal(hex(encodeOpenReply(2 ** 33 + 1, 1)), "0100000002000000" + "01000000" + "00000000");
  const statfs = encodeStatfsReply({ blocks: 0, files: 7, blockSize: 4096, nameMax: 255 });
  assert.equal(statfs.byteLength, 80);
  const dv = new DataView(statfs.buffer);
  assert.equal(dv.getBigUint64(24, true), 7n);
  assert.equal(dv.getUint32(40, true), 4096);
  assert.equal(dv.getUint32(44, true), 255);
});

test("dirent: fields, name and zero padding to 8 bytes", () => {
  assert.equal(direntSize(1), 32);
  assert.equal(direntSize(8), 32);
  assert.equal(direntSize(9), 40);
  const target = new Uint8Array(40).fill(0xee);
  const written = writeDirent(target, 0, { ino: 9, nextOffset: 40, type: 8, name: new TextEncoder().encode("abcdefghi") });
  assert.equal(written, 40);
  assert.equal(hex(target), "0900000000000000" + "2800000000000000" + "09000000" + "08000000" + hex(new TextEncoder().encode("abcdefghi")) + "00000000000000");
});

test("argument decoders", () => {
  assert.equal(decodeName(fromHex("6d656d696e666f00")), "meminfo");
  assert.equal(decodeName(fromHex("6162")), "ab");
  assert.deepEqual(decodeReadRequest(fromHex("0500000000000000 0010000000000000 00000200 00000000 0000000000000000 00000000 00000000")), {
    fileHandle: 5,
    offset: 4096,
    size: 131072,
  });
  assert.equal(decodeOpenFlags(fromHex("02800000 00000000")), 0o100002);
  assert.equal(decodeReleaseHandle(fromHex("0700000000000000 00000000 00000000 0000000000000000")), 7);
  assert.equal(decodeForgetCount(fromHex("0300000000000000")), 3);
  assert.deepEqual(decodeBatchForget(fromHex("02000000 00000000 0500000000000000 0100000000000000 0600000000000000 0200000000000000")), [
    { nodeId: 5, count: 1 },
    { nodeId: 6, count: 2 },
  ]);
});

test("argument decoders refuse truncated arguments", () => {
  assert.throws(() => decodeReadRequest(new Uint8Array(8)), /READ arguments are 8 bytes/);
  assert.throws(() => decodeBatchForget(fromHex("02000000 00000000 0500000000000000 0100000000000000")), /BATCH_FORGET/);
  assert.throws(() => decodeInitRequest(new Uint8Array(4)), /INIT/);
});

test("INVAL_ENTRY notification: unique 0, code 3, parent, name length, no flags, the name NUL-terminated", () => {
  const message = encodeNotifyInvalEntry(0x1_0000_0002, "abc");
  const dv = new DataView(message.buffer);
  assert.equal(message.byteLength, 16 + 16 + 4);
  assert.equal(dv.getUint32(0, true), message.byteLength);
  assert.equal(dv.getInt32(4, true), 3);
  assert.equal(dv.getBigUint64(8, true), 0n);
  assert.equal(dv.getBigUint64(16, true), 0x1_0000_0002n);
  assert.equal(dv.getUint32(24, true), 3);
  assert.equal(dv.getUint32(28, true), 0);
  assert.deepEqual([...message.subarray(32)], [0x61, 0x62, 0x63, 0]);
});

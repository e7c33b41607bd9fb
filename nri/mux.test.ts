import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger } from "../core/log.ts";
import {
  encodeMuxFrames,
  maxIncomingFramePayload,
  Multiplexer,
  MuxFrameDecoder,
  MuxProtocolError,
} from "./mux.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

test("a payload becomes one frame with conn id and length in big endian", () => {
  const frames = encodeMuxFrames(2, Buffer.from("0a0870726f6376696577", "hex"));
  assert.deepEqual(frames.map(hex), ["00000002" + "0000000a" + "0a0870726f6376696577"]);
});

test("outgoing data is cut into frames of at most 4096 payload bytes, in order", () => {
  const data = Buffer.alloc(10000, 0);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const frames = encodeMuxFrames(1, data);
  assert.deepEqual(
    frames.map((f) => [f.readUInt32BE(0), f.readUInt32BE(4), f.length - 8]),
    [[1, 4096, 4096], [1, 4096, 4096], [1, 1808, 1808]],
  );
  assert.deepEqual(Buffer.concat(frames.map((f) => f.subarray(8))), data);
  assert.deepEqual(encodeMuxFrames(1, Buffer.alloc(4096)).length, 1);
  assert.deepEqual(encodeMuxFrames(1, Buffer.alloc(4097)).map((f) => f.length - 8), [4096, 1]);
  assert.deepEqual(encodeMuxFrames(1, new Uint8Array()), []);
});

test("conn id 0 is reserved and cannot be sent", () => {
  assert.throws(() => encodeMuxFrames(0, Buffer.from("00", "hex")), /conn id 0/);
});

test("the decoder reassembles frames cut anywhere, including inside the header", () => {
  const stream = Buffer.from("00000001" + "00000003" + "aabbcc" + "00000002" + "00000001" + "dd", "hex");
  const decoder = new MuxFrameDecoder();
  const frames = [];
  for (const byte of stream) frames.push(...decoder.push(Buffer.from([byte])));
  assert.deepEqual(
    frames.map((f) => [f.connId, hex(f.payload)]),
    [[1, "aabbcc"], [2, "dd"]],
  );
});

test("the decoder returns several frames from one read, and keeps a partial one for later", () => {
  const decoder = new MuxFrameDecoder();
  const first = decoder.push(Buffer.from("00000001" + "00000001" + "01" + "00000002" + "00000000" + "00000001" + "00000002" + "ab", "hex"));
  assert.deepEqual(first.map((f) => [f.connId, hex(f.payload)]), [[1, "01"], [2, ""]]);
  assert.deepEqual(decoder.push(Buffer.from("cd", "hex")).map((f) => [f.connId, hex(f.payload)]), [[1, "abcd"]]);
});

test("the decoder rejects an oversize frame and conn id 0 as soon as the header is in", () => {
  const oversize = Buffer.alloc(8);
  oversize.writeUInt32BE(1, 0);
  oversize.writeUInt32BE(maxIncomingFramePayload + 1, 4);
  assert.throws(() => new MuxFrameDecoder().push(oversize), MuxProtocolError);
  assert.throws(() => new MuxFrameDecoder().push(Buffer.from("0000000000000001ff", "hex")), /reserved conn id 0/);
});

/** A connected pair of real unix sockets. */
async function socketPair(): Promise<{ ours: Socket; peer: Socket; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), "procview-mux-"));
  const path = join(dir, "s.sock");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
  const ours = connect(path);
  const peer = await accepted;
  return {
    ours,
    peer,
    cleanup: () => {
      ours.destroy();
      peer.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function collect(socket: Socket): () => Buffer {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks);
}

const quiet = createLogger({ write: () => {} });
const until = async (condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), "condition not reached in 1 s");
};

test("the multiplexer routes frames by conn id and skips conns it does not serve", async () => {
  const { ours, peer, cleanup } = await socketPair();
  try {
    const lines: string[] = [];
    const mux = new Multiplexer(ours, createLogger({ write: (l) => lines.push(l) }), (err) => assert.fail(err));
    const got: string[] = [];
    mux.open(1, (data) => got.push(`1:${hex(data)}`));
    const two = mux.open(2, (data) => got.push(`2:${hex(data)}`));
    peer.write(Buffer.from("00000001" + "00000001" + "aa" + "00000007" + "00000001" + "bb" + "00000002" + "00000001", "hex"));
    peer.write(Buffer.from("cc", "hex"));
    await until(() => got.length === 2);
    assert.deepEqual(got, ["1:aa", "2:cc"]);
    assert.match(lines.join(""), /"connId":7/);
    const received = collect(peer);
    two.write(Buffer.from("0102", "hex"));
    await until(() => received().length === 10);
    assert.equal(hex(received()), "00000002" + "00000002" + "0102");
  } finally {
    cleanup();
  }
});

test("20,000 frames for an unknown conn id log one warning, not one per frame, and the served conns still work", async () => {
  const { ours, peer, cleanup } = await socketPair();
  try {
    const lines: string[] = [];
    const mux = new Multiplexer(ours, createLogger({ write: (l) => lines.push(l) }), (err) => assert.fail(err));
    const got: string[] = [];
    mux.open(1, (data) => got.push(hex(data)));
    const unknown = Buffer.from("00000009" + "00000001" + "ee", "hex");
    peer.write(Buffer.concat([...Array.from({ length: 20_000 }, () => unknown), Buffer.from("00000001" + "00000001" + "aa", "hex")]));
    await until(() => got.length === 1);
    assert.deepEqual(got, ["aa"]);
    assert.equal(lines.filter((line) => line.includes("a connection we do not serve")).length, 1);
  } finally {
    cleanup();
  }
});

test("a malformed frame destroys the socket and reports the error instead of throwing", async () => {
  const { ours, peer, cleanup } = await socketPair();
  try {
    const errors: Error[] = [];
    const mux = new Multiplexer(ours, quiet, (err) => errors.push(err));
    mux.open(1, () => {});
    const closed = new Promise((resolve) => ours.once("close", resolve));
    peer.write(Buffer.from("00000000" + "00000001" + "aa", "hex"));
    await closed;
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof MuxProtocolError);
  } finally {
    cleanup();
  }
});

test("a handler that throws on its bytes ends the socket the same way", async () => {
  const { ours, peer, cleanup } = await socketPair();
  try {
    const errors: Error[] = [];
    const mux = new Multiplexer(ours, quiet, (err) => errors.push(err));
    mux.open(1, () => {
      throw new Error("not ttrpc");
    });
    const closed = new Promise((resolve) => ours.once("close", resolve));
    peer.write(Buffer.from("00000001" + "00000001" + "aa", "hex"));
    await closed;
    assert.deepEqual(errors.map((e) => e.message), ["not ttrpc"]);
  } finally {
    cleanup();
  }
});

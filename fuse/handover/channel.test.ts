import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder, maxFrameBytes, type Frame } from "./channel.ts";

test("frames survive any split of the byte stream", () => {
  const frames: Frame[] = [
    { kind: "message", message: { type: "hello", pid: 42 } },
    { kind: "bytes", bytes: Uint8Array.from({ length: 300 }, (_, i) => i & 0xff) },
    { kind: "bytes", bytes: new Uint8Array(0) },
    { kind: "message", message: { type: "commit" } },
  ];
  const stream = new Uint8Array(frames.reduce((sum, frame) => sum + encodeFrame(frame).byteLength, 0));
  let at = 0;
  for (const frame of frames) {
    stream.set(encodeFrame(frame), at);
    at += encodeFrame(frame).byteLength;
  }
  for (const pieceSize of [1, 3, 7, 64, stream.byteLength]) {
    const decoder = new FrameDecoder();
    const decoded: Frame[] = [];
    for (let start = 0; start < stream.byteLength; start += pieceSize) decoded.push(...decoder.push(stream.slice(start, start + pieceSize)));
    assert.deepEqual(decoded, frames, `pieces of ${pieceSize}`);
  }
});

test("the wire format: length, kind, payload", () => {
  assert.deepEqual([...encodeFrame({ kind: "message", message: { a: 1 } })], [0, 0, 0, 7, 1, ...new TextEncoder().encode('{"a":1}')]);
  assert.deepEqual([...encodeFrame({ kind: "bytes", bytes: Uint8Array.of(9, 8) })], [0, 0, 0, 2, 2, 9, 8]);
});

test("frames no peer sends are refused", () => {
  assert.throws(() => new FrameDecoder().push(Uint8Array.of(0, 0, 0, 1, 7, 0)), /unknown handover frame kind 7/);
  const huge = new Uint8Array(5);
  new DataView(huge.buffer).setUint32(0, maxFrameBytes + 1);
  huge[4] = 2;
  assert.throws(() => new FrameDecoder().push(huge), /exceeds/);
  assert.throws(() => new FrameDecoder().push(encodeFrame({ kind: "message", message: { a: 1 } }).map((byte, i) => (i === 5 ? 0x5b : byte))), SyntaxError);
  const array = new TextEncoder().encode("[1]");
  assert.throws(() => new FrameDecoder().push(Uint8Array.of(0, 0, 0, 3, 1, ...array)), /not a JSON object/);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { ByteQueue } from "./byte-queue.ts";

test("bytes come out in order across chunk boundaries", () => {
  const queue = new ByteQueue();
  queue.push(Buffer.from("0102", "hex"));
  queue.push(new Uint8Array());
  queue.push(Buffer.from("030405", "hex"));
  assert.equal(queue.length, 5);
  assert.equal(queue.peek(3).toString("hex"), "010203");
  assert.equal(queue.take(1).toString("hex"), "01");
  assert.equal(queue.take(3).toString("hex"), "020304");
  assert.equal(queue.length, 1);
  assert.equal(queue.take(1).toString("hex"), "05");
  assert.equal(queue.length, 0);
});

test("zero bytes can be taken from an empty queue; more than held cannot", () => {
  const queue = new ByteQueue();
  assert.equal(queue.take(0).length, 0);
  assert.throws(() => queue.peek(1), RangeError);
});

test("taken bytes are copies: later pushes and takes do not change them", () => {
  const queue = new ByteQueue();
  const source = Buffer.from("aabb", "hex");
  queue.push(source);
  const taken = queue.take(2);
  source[0] = 0;
  assert.equal(taken.toString("hex"), "aabb");
});

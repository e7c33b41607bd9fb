import { test } from "node:test";
import assert from "node:assert/strict";
import { handoverSocketPath, parseHello, parseLayout, parseOffer } from "./protocol.ts";

test("messages parse into what each side needs, and malformed ones are refused", () => {
  assert.deepEqual(parseHello({ type: "hello", version: 1, pid: 42, mountpoint: "/var/lib/procview" }), { version: 1, pid: 42, mountpoint: "/var/lib/procview" });
  assert.throws(() => parseHello({ type: "hello", version: 1, pid: 0, mountpoint: "/m" }), /malformed hello/);
  assert.throws(() => parseHello({ type: "hello", version: "1", pid: 4, mountpoint: "/m" }), /malformed hello/);
  assert.deepEqual(parseOffer({ type: "offer", pid: 7, fd: 19, sizes: { nodes: 100, handles: 200 } }), { pid: 7, fd: 19, sizes: { nodes: 100, handles: 200 } });
  assert.throws(() => parseOffer({ type: "offer", pid: 7, fd: -1, sizes: { nodes: 100, handles: 200 } }), /malformed offer/);
  assert.throws(() => parseOffer({ type: "offer", pid: 7, fd: 3 }), /malformed offer/);
  assert.deepEqual(parseOffer({ type: "offer", pid: 7, fd: 19, sizes: { nodes: 100, handles: 200, treeState: 4096 } }).sizes, { nodes: 100, handles: 200, treeState: 4096 });
  assert.throws(() => parseOffer({ type: "offer", pid: 7, fd: 19, sizes: { nodes: 100, handles: 200, treeState: "4096" } }), /malformed offer/);
  assert.deepEqual(parseLayout({ layout: { nodes: [[0, 8]], handles: [] } }), { nodes: [[0, 8]], handles: [], treeState: [] });
  assert.deepEqual(parseLayout({ layout: { nodes: [], handles: [], treeState: [[4096, 8192]] } }).treeState, [[4096, 8192]]);
  assert.throws(() => parseLayout({ layout: { nodes: [], handles: [], treeState: [[0]] } }), /malformed state layout/);
  assert.throws(() => parseLayout({ layout: { nodes: [[0, 8, 9]], handles: [] } }), /malformed state layout/);
  assert.throws(() => parseLayout({ layout: { nodes: [[-1, 8]], handles: [] } }), /malformed state layout/);
  assert.equal(handoverSocketPath("/run/procview"), "/run/procview/fuse-handover.sock");
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../core/log.ts";
import { startEntryAudit } from "./entry-audit.ts";
import { NodeTable, createNodeTableMemory } from "./node-table.ts";
import { encodeNotifyInvalEntry } from "./protocol.ts";

/** The kernel side is a recorder here: what reaches the real kernel is request-loop.stack.test.ts's business. */
function auditFixture(names: Set<string>, answer = true) {
  const nodes = new NodeTable(createNodeTableMemory(64));
  const containers = nodes.lookup(1, "containers").nodeId;
  const written: Uint8Array[] = [];
  const logs: string[] = [];
  const audit = startEntryAudit({
    fd: 99,
    nodes,
    directories: [{ path: ["containers"], names: () => names }],
    write: async (fd, data) => {
      assert.equal(fd, 99);
      written.push(data);
      return answer;
    },
    logger: createLogger({ write: (line) => logs.push(line) }),
    intervalMs: 60_000,
  });
  return { nodes, containers, written, logs, audit };
}

test("each name the kernel holds that left the directory is expired once", async () => {
  const names = new Set(["kept", "gone"]);
  const { nodes, containers, written, audit } = auditFixture(names);
  await audit.round();
  nodes.lookup(containers, "kept");
  const gone = nodes.lookup(containers, "gone");
  await audit.round();
  assert.deepEqual(written, [], "every held name still exists");
  names.delete("gone");
  await audit.round();
  assert.deepEqual(written, [encodeNotifyInvalEntry(containers, "gone")]);
  await audit.round();
  assert.equal(written.length, 1, "a name still held after its expiry (something open below it) is not expired again");
  names.add("gone");
  await audit.round();
  names.delete("gone");
  await audit.round();
  assert.equal(written.length, 2, "back and gone again: expired again");
  nodes.forget(gone.nodeId, 1);
  await audit.round();
  assert.equal(written.length, 2);
  await audit.stop();
});

test("nothing is listed or written while the kernel holds nothing in the directory", async () => {
  let listed = 0;
  const nodes = new NodeTable(createNodeTableMemory(16));
  const audit = startEntryAudit({
    fd: 1,
    nodes,
    directories: [{ path: ["containers"], names: () => (listed++, new Set()) }],
    write: async () => assert.fail("nothing to expire"),
    logger: createLogger({ write: () => {} }),
    intervalMs: 60_000,
  });
  await audit.round();
  nodes.lookup(1, "containers");
  await audit.round();
  assert.equal(listed, 0);
  await audit.stop();
});

test("a directory that cannot be listed expires nothing and says so; stop waits for the round in flight", async () => {
  const nodes = new NodeTable(createNodeTableMemory(16));
  nodes.lookup(nodes.lookup(1, "containers").nodeId, "a");
  const logs: string[] = [];
  let release: () => void = () => {};
  const written: string[] = [];
  let failing = true;
  const audit = startEntryAudit({
    fd: 1,
    nodes,
    directories: [
      {
        path: ["containers"],
        names: () => {
          if (failing) throw new Error("EACCES");
          return new Set();
        },
      },
    ],
    write: (_fd, data) => {
      written.push(new TextDecoder().decode(data.subarray(32, 33)));
      return new Promise((resolve) => (release = () => resolve(true)));
    },
    logger: createLogger({ write: (line) => logs.push(line) }),
    intervalMs: 60_000,
  });
  await audit.round();
  assert.ok(logs.some((line) => line.includes("cannot list an audited directory") && line.includes("EACCES")));
  assert.deepEqual(written, []);
  failing = false;
  const round = audit.round();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(written, ["a"]);
  let stopped = false;
  const stopping = audit.stop().then(() => (stopped = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stopped, false, "the write is still in flight");
  release();
  await Promise.all([round, stopping]);
  assert.equal(stopped, true);
});

test("a directory whose version stays the same is not listed again; a new version is", async () => {
  const nodes = new NodeTable(createNodeTableMemory(16));
  const containers = nodes.lookup(1, "containers").nodeId;
  nodes.lookup(containers, "a");
  let version = "1";
  let names = new Set(["a"]);
  let listed = 0;
  const written: Uint8Array[] = [];
  const audit = startEntryAudit({
    fd: 1,
    nodes,
    directories: [{ path: ["containers"], names: () => (listed++, names), version: () => version }],
    write: async (_fd, data) => (written.push(data), true),
    logger: createLogger({ write: () => {} }),
    intervalMs: 60_000,
  });
  await audit.round();
  await audit.round();
  assert.equal(listed, 1, "the first round lists, the second finds the same version");
  names = new Set();
  version = "2";
  await audit.round();
  assert.equal(listed, 2);
  assert.deepEqual(written, [encodeNotifyInvalEntry(containers, "a")]);
  await audit.stop();
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger } from "../core/log.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { viewFiles } from "../core/views.ts";
import { readMemorySnapshot } from "./cgroup/memory.ts";
import { v1FixtureLayout } from "./cgroup/testdata/layout.ts";
import { readHostMeminfo } from "./host/meminfo.ts";
import { FsError, type DirNode, type FileNode, type FsNode } from "./node.ts";
import { createProcviewTree, createTree } from "./procview-tree.ts";
import { renderMeminfo } from "./views/meminfo.ts";

const ctx = { pid: process.pid, uid: 0, gid: 0 };
const procDir = fileURLToPath(new URL("./host/testdata", import.meta.url));

/** A tree over fixture cgroups with two registered containers, one whose cgroup is gone. */
function fixtureTree(t: { after(fn: () => void): void }): { tree: DirNode; logs: string[] } {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-tree-"));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(stateDir);
  registry.put({ id: "limited", cgroupPath: "/limited", recordedAt: 1 });
  registry.put({ id: "vanished", cgroupPath: "/no/such/cgroup", recordedAt: 1 });
  const logs: string[] = [];
  const logger = createLogger({ write: (line) => logs.push(line) });
  return { tree: createProcviewTree(registry, { layout: v1FixtureLayout(), procDir }, logger), logs };
}

function walk(node: FsNode | undefined, path: string): FsNode | undefined {
  for (const name of path.split("/")) {
    if (node?.kind !== "dir") return undefined;
    node = node.lookup(name, ctx);
  }
  return node;
}

function asFile(node: FsNode | undefined): FileNode {
  assert.equal(node?.kind, "file");
  return node as FileNode;
}

test("the root holds only the containers directory, which lists registered ids", (t) => {
  const { tree } = fixtureTree(t);
  assert.deepEqual(tree.list(ctx), ["containers"]);
  assert.equal(tree.lookup("proc", ctx), undefined);
  assert.equal(tree.lookup("..", ctx), undefined);
  const containers = walk(tree, "containers") as DirNode;
  assert.deepEqual(containers.list(ctx).sort(), ["limited", "vanished"]);
});

test("a container's meminfo is rendered from its cgroup", (t) => {
  const { tree } = fixtureTree(t);
  assert.deepEqual((walk(tree, "containers/limited") as DirNode).list(ctx), ["proc"]);
  const text = asFile(walk(tree, "containers/limited/proc/meminfo")).open(ctx);
  const expected = renderMeminfo(readMemorySnapshot(v1FixtureLayout(), "/limited"), readHostMeminfo(join(procDir, "meminfo")));
  assert.equal(text, expected);
  assert.match(String(text), /^MemTotal: {10}51200 kB\n/);
});

test("unknown and invalid container ids are ENOENT (lookup answers undefined)", (t) => {
  const { tree } = fixtureTree(t);
  const containers = walk(tree, "containers") as DirNode;
  for (const id of ["nope", "..", ".", "a/b", "", "../../etc"]) assert.equal(containers.lookup(id, ctx), undefined, id);
  assert.equal(walk(tree, "containers/limited/proc/cpuinfo-not-served"), undefined);
  assert.equal(walk(tree, "containers/limited/proc/meminfo/x"), undefined);
});

test("a registered container whose cgroup vanished: ENOENT at open and a log line", (t) => {
  const { tree, logs } = fixtureTree(t);
  const file = asFile(walk(tree, "containers/vanished/proc/meminfo"));
  assert.throws(() => file.open(ctx), (error: unknown) => error instanceof FsError && error.errno === 2);
  assert.equal(logs.length, 1);
  const record = JSON.parse(logs[0]) as Record<string, unknown>;
  assert.equal(record.level, "warn");
  assert.equal(record.container, "vanished");
  assert.equal(record.cgroupPath, "/no/such/cgroup");
});

test("a cgroup file with garbage is EIO, not a crash", (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-tree-"));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(stateDir);
  registry.put({ id: "c", cgroupPath: "/", recordedAt: 1 });
  const logs: string[] = [];
  const layout = { v1: new Map([["memory", fileURLToPath(new URL("./cgroup/testdata/garbage", import.meta.url))]]) };
  const tree = createProcviewTree(registry, { layout, procDir }, createLogger({ write: (line) => logs.push(line) }));
  const file = asFile(walk(tree, "containers/c/proc/meminfo"));
  assert.throws(() => file.open(ctx), (error: unknown) => error instanceof FsError && error.errno === 5);
  assert.equal(JSON.parse(logs[0]).level, "error");
});

test("every view the NRI plugin binds is served for a container", (t) => {
  const { tree } = fixtureTree(t);
  for (const view of viewFiles) {
    assert.equal(walk(tree, `containers/limited/${view.path}`)?.kind, "file", view.path);
  }
});

test("createTree checks its options", () => {
  assert.throws(() => createTree(null as never), /must be an object/);
  assert.throws(() => createTree({ stateDir: "relative" }), /absolute stateDir/);
  assert.throws(() => createTree({ stateDir: "/tmp", procDir: "proc" }), /procDir must be an absolute path/);
  const tree = createTree({ stateDir: "/nonexistent-procview-state" });
  assert.deepEqual((walk(tree, "containers") as DirNode).list(ctx), []);
});

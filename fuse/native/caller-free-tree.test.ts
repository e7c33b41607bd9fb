import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCgroupLayout } from "../../views/cgroup/layout.ts";
import type { DirNode } from "../node.ts";
import { createTree } from "../../views/procview-tree.ts";
import { callerFreeTree } from "./caller-free-tree.ts";
import { unknownCaller } from "./operations.ts";

test("procview's tree without a caller keeps containers/ and drops the reader-pid views", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-native-tree-"));
  try {
    const full = createTree({ stateDir, cgroupLayout: parseCgroupLayout("") });
    // The premise: the full tree has reader-pid views at its root.
    assert.ok(full.list(unknownCaller).includes("proc"));
    const tree = callerFreeTree(full);
    assert.deepEqual(tree.list(unknownCaller), ["containers"]);
    assert.equal(tree.lookup("containers", unknownCaller)?.kind, "dir");
    for (const name of ["proc", "sys", "anything"]) assert.equal(tree.lookup(name, unknownCaller), undefined, name);
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test("a tree without containers/ serves nothing", () => {
  const empty: DirNode = { kind: "dir", lookup: () => undefined, list: () => ["proc"] };
  const tree = callerFreeTree(empty);
  assert.deepEqual(tree.list(unknownCaller), []);
  assert.equal(tree.lookup("containers", unknownCaller), undefined);
});

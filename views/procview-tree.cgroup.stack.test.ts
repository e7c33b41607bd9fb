// Real cgroups: the test makes two cgroups with different limits, moves a process into
// each, and reads the views through the tree as those processes. Needs root and a
// writable cgroup hierarchy (v1, hybrid or v2).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { locateController } from "./cgroup/layout.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { formatCpuList, parseCpuList } from "./cgroup/cpu-list.ts";
import { FsError, type DirNode, type FileNode, type FsNode, type RequestContext } from "../fuse/node.ts";
import { createTree } from "./procview-tree.ts";
import { makeCgroup, removeCgroup, testLayout } from "../fuse/testdata/test-cgroup.ts";

const layout = testLayout;
const MiB = 1024 * 1024;

function open(tree: DirNode, path: string, ctx: RequestContext): string {
  let node: FsNode | undefined = tree;
  for (const name of path.split("/")) node = node?.kind === "dir" ? node.lookup(name, ctx) : undefined;
  assert.equal(node?.kind, "file", path);
  return String((node as FileNode).open(ctx));
}

const memTotalOf = (meminfo: string) => Number(/^MemTotal:\s+(\d+) kB$/m.exec(meminfo)?.[1]);
const cpusetWorks = existsSync(join(locateController(layout, "cpuset", "/")!.dir, "cpuset.cpus"));

test("real cgroups: each reader and each registered container sees its own cgroup's limits", async (t) => {
  const unique = `procview-test-${process.pid}-${Date.now()}`;
  const stateDir = mkdtempSync(join(tmpdir(), "procview-state-"));
  const small = makeCgroup(`/${unique}-small`, 64 * MiB, "0");
  t.after(() => removeCgroup(small));
  const large = makeCgroup(`/${unique}-large`, 128 * MiB, undefined);
  t.after(() => removeCgroup(large));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  new ContainerRegistry(stateDir).put({ id: "small", cgroupPath: small.path, recordedAt: Date.now() });

  const tree = createTree({ stateDir });
  const asSmall = { pid: small.child.pid!, uid: 0, gid: 0 };
  const asLarge = { pid: large.child.pid!, uid: 0, gid: 0 };

  // Alternating readers through the same tree: a cache keyed wrongly would show one the other's numbers.
  for (let round = 0; round < 3; round++) {
    assert.equal(memTotalOf(open(tree, "proc/meminfo", asSmall)), 64 * 1024);
    assert.equal(memTotalOf(open(tree, "proc/meminfo", asLarge)), 128 * 1024);
  }
  assert.equal(memTotalOf(open(tree, "containers/small/proc/meminfo", asLarge)), 64 * 1024, "the record, not the reader, decides");

  if (cpusetWorks) {
    assert.equal(open(tree, "sys/devices/system/cpu/online", asSmall), "0\n");
    assert.equal([...open(tree, "proc/cpuinfo", asSmall).matchAll(/^processor\t: /gm)].length, 1);
    assert.match(open(tree, "proc/stat", asSmall), /^cpu  \d+ 0 \d+ \d+ 0 0 0 0 0 0\ncpu0 [^\n]+\n(?!cpu1)/);
  }
  const hostCpuCount = parseCpuList(readFileSync("/sys/devices/system/cpu/online", "utf8")).length;
  assert.equal(open(tree, "sys/devices/system/cpu/online", asLarge), formatCpuList([...Array(hostCpuCount).keys()]) + "\n");

  // One sleeping process: nothing running, one task, and its pid (the same namespace as ours).
  assert.equal(open(tree, "proc/loadavg", asSmall), `0.00 0.00 0.00 0/1 ${small.child.pid}\n`);
  const [uptime, idle] = open(tree, "containers/small/proc/uptime", asLarge).trim().split(" ").map(Number);
  assert.ok(uptime >= 0 && uptime < 120, `uptime ${uptime} is the age of the cgroup's process`);
  assert.ok(idle >= 0);
  assert.match(open(tree, "proc/swaps", asSmall), /^Filename/);

  // The container goes away: its cgroup with it. The tree answers ENOENT, and keeps serving others.
  await removeCgroup(small);
  assert.throws(() => open(tree, "containers/small/proc/meminfo", asLarge), (error: unknown) => error instanceof FsError && error.errno === 2);
  assert.throws(() => open(tree, "proc/meminfo", asSmall), (error: unknown) => error instanceof FsError && error.errno === 2);
  assert.equal(memTotalOf(open(tree, "proc/meminfo", asLarge)), 128 * 1024);
});

// Real cgroups: the test makes two cgroups with different limits, moves a process into
// each, and reads the views through the tree as those processes. Needs root and a
// writable cgroup hierarchy (v1, hybrid or v2).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { once } from "node:events";
import { locateController, parseCgroupLayout } from "../core/cgroup-path.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { formatCpuList, parseCpuList } from "./cgroup/cpu-list.ts";
import { FsError, type DirNode, type FileNode, type FsNode, type RequestContext } from "./node.ts";
import { createTree } from "./procview-tree.ts";
import { removeCgroupTreesWhenIdle } from "../integration/leftovers.ts";

const layout = parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
const controllers = ["memory", "cpu", "cpuacct", "cpuset", "blkio"];
const MiB = 1024 * 1024;

interface TestCgroup {
  path: string;
  dirs: string[];
  child: ChildProcess;
}

/** A cgroup at `path` in every hierarchy, with a memory limit and optionally a cpuset, holding a sleeping child. */
function makeCgroup(path: string, memoryLimit: number, cpus: string | undefined): TestCgroup {
  const dirs = [...new Set(controllers.map((controller) => locateController(layout, controller, path)!.dir))];
  for (const dir of dirs) mkdirSync(dir);
  const cgroup: TestCgroup = { path, dirs, child: spawn("sleep", ["300"], { stdio: "ignore" }) };
  for (const dir of dirs) {
    if (existsSync(join(dir, "memory.limit_in_bytes"))) writeFileSync(join(dir, "memory.limit_in_bytes"), String(memoryLimit));
    if (existsSync(join(dir, "memory.max"))) writeFileSync(join(dir, "memory.max"), String(memoryLimit));
    // A v1 cpuset cgroup takes no task before it has CPUs and memory nodes.
    if (existsSync(join(dir, "cpuset.mems"))) {
      writeFileSync(join(dir, "cpuset.mems"), readFileSync(join(posix.dirname(dir), "cpuset.effective_mems"), "utf8").trim() || "0");
      writeFileSync(join(dir, "cpuset.cpus"), cpus ?? readFileSync(join(posix.dirname(dir), "cpuset.effective_cpus"), "utf8").trim());
    } else if (cpus !== undefined && existsSync(join(dir, "cpuset.cpus"))) {
      writeFileSync(join(dir, "cpuset.cpus"), cpus);
    }
    writeFileSync(join(dir, "cgroup.procs"), String(cgroup.child.pid));
  }
  return cgroup;
}

async function removeCgroup(cgroup: TestCgroup): Promise<void> {
  if (cgroup.child.exitCode === null && cgroup.child.signalCode === null) {
    const exited = once(cgroup.child, "exit");
    cgroup.child.kill("SIGKILL");
    await exited;
  }
  await removeCgroupTreesWhenIdle(cgroup.dirs);
}

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

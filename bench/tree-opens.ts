// Per-open cost of every view through the procview tree, against a real cgroup two levels
// deep (like containerd's /k8s.io/<id>) holding one sleeping process. Needs root.
// Run: node bench/tree-opens.ts [opens per view] [only this view, e.g. proc/meminfo]
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { locateController, parseCgroupLayout } from "../views/cgroup/layout.ts";
import { ContainerRegistry } from "../core/registry.ts";
import type { DirNode, FileNode, FsNode, RequestContext } from "../fuse/node.ts";
import { createTree } from "../views/procview-tree.ts";
import { viewRenderers } from "../views/render/catalog.ts";
import { removeCgroupTreesWhenIdle } from "../integration/leftovers.ts";

const opens = Number(process.argv[2] ?? 20000);
const onlyView = process.argv[3];
const layout = parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
const parent = `/procview-bench-${process.pid}`;
const path = `${parent}/container`;
const dirsOf = (cgroupPath: string) =>
  [...new Set(["memory", "cpu", "cpuacct", "cpuset", "blkio"].map((controller) => locateController(layout, controller, cgroupPath)!.dir))];

const child = spawn("sleep", ["600"], { stdio: "ignore" });
const created: string[] = [];
for (const cgroupPath of [parent, path]) {
  for (const dir of dirsOf(cgroupPath)) {
    mkdirSync(dir);
    created.unshift(dir);
    if (existsSync(join(dir, "cpuset.mems"))) {
      writeFileSync(join(dir, "cpuset.mems"), readFileSync(join(posix.dirname(dir), "cpuset.effective_mems"), "utf8").trim());
      writeFileSync(join(dir, "cpuset.cpus"), readFileSync(join(posix.dirname(dir), "cpuset.effective_cpus"), "utf8").trim());
    }
    if (existsSync(join(dir, "memory.limit_in_bytes"))) writeFileSync(join(dir, "memory.limit_in_bytes"), String(256 * 1024 * 1024));
  }
}
for (const dir of dirsOf(path)) writeFileSync(join(dir, "cgroup.procs"), String(child.pid));

const stateDir = mkdtempSync(join(tmpdir(), "procview-bench-"));
new ContainerRegistry(stateDir).put({ id: "bench", cgroupPath: path, recordedAt: Date.now() });
const tree = createTree({ stateDir });
const ctx: RequestContext = { pid: child.pid!, uid: 0, gid: 0 };

function fileAt(root: DirNode, viewPath: string): FileNode {
  let node: FsNode | undefined = root;
  for (const name of viewPath.split("/")) node = node?.kind === "dir" ? node.lookup(name, ctx) : undefined;
  if (node?.kind !== "file") throw new Error(`not a file: ${viewPath}`);
  return node;
}

try {
  // CPU time (user+system) per open is what the daemon pays; wall time also counts waiting
  // for a busy machine's CPUs.
  console.log(`${opens} opens per view; microseconds per open, CPU time (wall time)`);
  console.log("view".padEnd(32), "containers/<id>".padStart(18), "LXCFS layout".padStart(18));
  for (const viewPath of [...viewRenderers.keys()].filter((path) => onlyView === undefined || path === onlyView)) {
    const results = [`containers/bench/${viewPath}`, viewPath].map((treePath) => {
      const file = fileAt(tree, treePath);
      for (let i = 0; i < 500; i++) file.open(ctx);
      const startCpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      for (let i = 0; i < opens; i++) file.open(ctx);
      const wall = Number(process.hrtime.bigint() - start) / 1000 / opens;
      const cpu = process.cpuUsage(startCpu);
      return `${((cpu.user + cpu.system) / opens).toFixed(1)} (${wall.toFixed(1)})`;
    });
    console.log(viewPath.padEnd(32), results[0].padStart(18), results[1].padStart(18));
  }
} finally {
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
  await removeCgroupTreesWhenIdle(created);
  rmSync(stateDir, { recursive: true, force: true });
}

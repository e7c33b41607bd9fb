import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CgroupLayout } from "./cgroup/layout.ts";
import { createLogger } from "../core/log.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { viewFiles } from "../core/views.ts";
import { readMemorySnapshot } from "./cgroup/memory.ts";
import { fixtureCgroupDir, v1FixtureLayout, v2FixtureLayout } from "./cgroup/testdata/layout.ts";
import { HostFiles } from "./host/host-files.ts";
import { fixtureProcDir, fixtureSysDir } from "./host/testdata/paths.ts";
import { FsError, type DirNode, type FileNode, type FsNode, type RequestContext } from "../fuse/node.ts";
import { auditedDirectories, createProcviewTree, createTree, startLoadAverageSampling } from "./procview-tree.ts";
import { SnapshotCache } from "../core/snapshot-cache.ts";
import { cgroupTaskCounter, cpuTimeCacheOptions, placementCacheOptions, readerCgroupCacheOptions, viewRenderers, type ViewSnapshots, type ViewSources } from "./render/catalog.ts";
import type { CgroupPaths } from "./cgroup/files.ts";
import { createLoadAverageMemory, LoadAverageTable } from "./loadavg-sampler.ts";
import { renderMeminfo } from "./render/meminfo.ts";

const hostCtx: RequestContext = { pid: process.pid, uid: 0, gid: 0 };
type TestContext = { after(fn: () => void): void };

function fixtureSources(layout: CgroupLayout = v1FixtureLayout(), loadAverages = new LoadAverageTable(createLoadAverageMemory())): ViewSources {
  // A clock at the epoch puts every fixture cgroup's creation after it: their CPU time all
  // counts within the containers' uptime (renderUptime's tests cover older cgroups).
  const host = new HostFiles({ procDir: fixtureProcDir, sysDir: fixtureSysDir, now: () => 0 });
  return { layout, host, cpuView: { limitByQuota: false }, loadAverages };
}

/** A tree over fixture cgroups with two registered containers, one whose cgroup is gone. */
function fixtureTree(t: TestContext, layout?: CgroupLayout): { tree: DirNode; logs: string[] } {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-tree-"));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(stateDir);
  registry.put({ id: "limited", cgroupPath: "/limited", recordedAt: 1 });
  registry.put({ id: "vanished", cgroupPath: "/no/such/cgroup", recordedAt: 1 });
  const logs: string[] = [];
  const logger = createLogger({ write: (line) => logs.push(line) });
  return { tree: createProcviewTree(registry, fixtureSources(layout), logger), logs };
}

/** A v2 tree with one registered container "ctr" in /pod/ctr. */
function v2ContainerTree(t: TestContext): DirNode {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-tree-"));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(stateDir);
  registry.put({ id: "ctr", cgroupPath: "/pod/ctr", recordedAt: 1 });
  const tree = createProcviewTree(registry, fixtureSources(v2FixtureLayout()), createLogger({ write: () => {} }));
  return tree;
}

function walk(node: FsNode | undefined, path: string): FsNode | undefined {
  for (const name of path.split("/")) {
    if (node?.kind !== "dir") return undefined;
    node = node.lookup(name, hostCtx);
  }
  return node;
}

function openFile(tree: DirNode, path: string, ctx: RequestContext = hostCtx): string {
  const node = walk(tree, path);
  assert.equal(node?.kind, "file", path);
  return String((node as FileNode).open(ctx));
}

const isErrno = (errno: number) => (error: unknown) => error instanceof FsError && error.errno === errno;

test("the root holds the containers directory and the LXCFS layout, nothing else", (t) => {
  const { tree } = fixtureTree(t);
  assert.deepEqual(tree.list(hostCtx), ["containers", "proc", "sys"]);
  assert.deepEqual((walk(tree, "proc") as DirNode).list(hostCtx).sort(), ["cpuinfo", "diskstats", "loadavg", "meminfo", "stat", "swaps", "uptime"]);
  assert.deepEqual((walk(tree, "sys/devices/system/cpu") as DirNode).list(hostCtx), ["online"]);
  for (const name of ["..", ".", "etc", "proc/self", "proc/1", "sys/kernel"]) assert.equal(walk(tree, name), undefined, name);
  assert.deepEqual((walk(tree, "containers") as DirNode).list(hostCtx).sort(), ["limited", "vanished"]);
  // Only root lists which containers run here; everyone may traverse to a known id (the kernel enforces the mode).
  assert.equal((walk(tree, "containers") as DirNode).mode, 0o711);
  assert.equal((walk(tree, "containers/limited") as DirNode).mode, undefined);
});

test("a container's meminfo is rendered from the cgroup in its record", (t) => {
  const { tree } = fixtureTree(t);
  assert.deepEqual((walk(tree, "containers/limited") as DirNode).list(hostCtx), ["proc", "sys"]);
  const expected = renderMeminfo(readMemorySnapshot(v1FixtureLayout(), "/limited"), new HostFiles({ procDir: fixtureProcDir }).meminfo());
  assert.equal(openFile(tree, "containers/limited/proc/meminfo"), expected);
  assert.match(expected, /^MemTotal: {10}51200 kB\n/);
});

test("every view renders for a v1 container", (t) => {
  const { tree } = fixtureTree(t);
  const view = (path: string) => openFile(tree, `containers/limited/${path}`);
  assert.equal(view("sys/devices/system/cpu/online"), "0-1\n");
  assert.equal([...view("proc/cpuinfo").matchAll(/^processor/gm)].length, 2);
  assert.match(view("proc/stat"), /^cpu  3100 0 750 188550 0 0 0 0 0 0\n[^]*^procs_running 2\nprocs_blocked 1\n/m);
  assert.equal(view("proc/uptime"), "995.50 1952.50\n");
  assert.match(view("proc/diskstats"), /^ 254       0 vda 100 3 800 8 50 4 2048 11 0 19 19 2 0 8 0 0 0\n/m);
  assert.match(view("proc/swaps"), /\nnone +virtual\t51200\t\t4096\t\t0\n$/);
  // 101 S, 102 R, 103 R, 104 D (nested cgroup), 105 exited: 2 running of 4; idle averages until the first sample.
  assert.equal(view("proc/loadavg"), "0.00 0.00 0.00 2/4 12\n");
});

test("every view renders for a v2 container", (t) => {
  const tree = v2ContainerTree(t);
  const view = (path: string) => openFile(tree, `containers/ctr/${path}`);
  assert.match(view("proc/meminfo"), /^MemTotal: {9}102400 kB\n/);
  assert.equal(view("sys/devices/system/cpu/online"), "0-1\n");
  assert.match(view("proc/stat"), /^cpu  2000 0 1000 188900 /);
  assert.match(view("proc/diskstats"), /^ 254       0 vda 10 0 2048 0 20 0 4096 0 0 0 0 0 0 0 0 0 0\n/m);
  assert.equal(view("proc/loadavg"), "0.00 0.00 0.00 1/1 1\n");
  assert.equal(view("proc/uptime"), "997.50 1965.00\n");
});

test("loadavg: idle at a cgroup's first read, then stepped by the sampler from its R and D threads", (t) => {
  let now = 1_000_000_000;
  const memory = createLoadAverageMemory();
  const layout = v1FixtureLayout();
  const sources = fixtureSources(layout, new LoadAverageTable(memory, { now: () => now }));
  const stateDir = mkdtempSync(join(tmpdir(), "procview-tree-"));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(stateDir);
  registry.put({ id: "limited", cgroupPath: "/limited", recordedAt: 1 });
  const tree = createProcviewTree(registry, sources, createLogger({ write: () => {} }));
  const loadavg = () => openFile(tree, "containers/limited/proc/loadavg");
  assert.equal(loadavg(), "0.00 0.00 0.00 2/4 12\n");
  const sampler = new LoadAverageTable(memory, { now: () => now });
  const round = { countTasks: cgroupTaskCounter(layout, sources.host), recordedKeys: [] };
  sampler.sample(round);
  assert.equal(loadavg(), "0.00 0.00 0.00 2/4 12\n", "no sample within the interval of the first read");
  now += 5000;
  sampler.sample(round);
  // 3 active threads (2 R, 1 D) for one 5 s sample from 0: the kernel's first step.
  assert.equal(loadavg(), "0.24 0.05 0.02 2/4 12\n");
  now += 5000;
  sampler.sample(round);
  assert.equal(loadavg(), "0.46 0.10 0.03 2/4 12\n");
  // Another reader of the same cgroup (LXCFS layout, a process in it) reads the same entry.
  assert.equal(openFile(tree, "proc/loadavg", { pid: 101, uid: 0, gid: 0 }), "0.46 0.10 0.03 2/4 12\n");
});

test("the sampler tracks every recorded container before any read, and never a gone one", (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-tree-"));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(stateDir);
  registry.put({ id: "limited", cgroupPath: "/limited", recordedAt: 1 });
  registry.put({ id: "vanished", cgroupPath: "/no/such/cgroup", recordedAt: 1 });
  const loadAverageMemory = createLoadAverageMemory();
  const options = { stateDir, cgroupLayout: v1FixtureLayout(), procDir: fixtureProcDir, sysDir: fixtureSysDir, loadAverageMemory };
  const sampler = startLoadAverageSampling(options, createLogger({ write: () => {} }));
  t.after(() => sampler.stop());
  assert.deepEqual(new LoadAverageTable(loadAverageMemory).trackedKeys(), ["/limited"], "the first round runs at start");
  assert.equal(openFile(createTree(options), "containers/limited/proc/loadavg"), "0.00 0.00 0.00 2/4 12\n");
});

test("containers/ is audited: its folders are stable entries, its names the recorded ids at each call", (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-tree-"));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(stateDir);
  registry.put({ id: "limited", cgroupPath: "/limited", recordedAt: 1 });
  const options = { stateDir, cgroupLayout: v1FixtureLayout(), procDir: fixtureProcDir, sysDir: fixtureSysDir };
  const [containers, ...others] = auditedDirectories(options);
  assert.deepEqual(others, []);
  assert.deepEqual(containers.path, ["containers"]);
  assert.deepEqual([...containers.names()], ["limited"]);
  assert.equal(containers.version?.(), undefined, "no version in the second after a change");
  const aMinuteAgo = new Date(Date.now() - 60_000);
  utimesSync(registry.dir, aMinuteAgo, aMinuteAgo);
  const version = containers.version?.();
  assert.ok(version !== undefined);
  assert.equal(containers.version?.(), version);
  registry.put({ id: "second", cgroupPath: "/limited", recordedAt: 1 });
  registry.remove("limited");
  assert.deepEqual([...containers.names()], ["second"]);
  assert.equal(containers.version?.(), undefined, "records written or removed: no version until the change settles");
  utimesSync(registry.dir, aMinuteAgo, new Date(Date.now() - 30_000));
  assert.notEqual(containers.version?.(), version);
  assert.equal((walk(createTree(options), "containers/second") as DirNode).stable, true);
});

test("unknown and invalid container ids are ENOENT (lookup answers undefined)", (t) => {
  const { tree } = fixtureTree(t);
  const containers = walk(tree, "containers") as DirNode;
  for (const id of ["nope", "..", ".", "a/b", "", "../../etc"]) assert.equal(containers.lookup(id, hostCtx), undefined, id);
  assert.equal(walk(tree, "containers/limited/proc/self"), undefined);
  assert.equal(walk(tree, "containers/limited/proc/meminfo/x"), undefined);
});

test("a registered container whose cgroup vanished: ENOENT at every view and a log line", (t) => {
  const { tree, logs } = fixtureTree(t);
  for (const view of viewRenderers.keys()) {
    const file = walk(tree, `containers/vanished/${view}`) as FileNode;
    assert.throws(() => file.open(hostCtx), isErrno(2), view);
  }
  assert.equal(logs.length, viewRenderers.size);
  const record = JSON.parse(logs[0]) as Record<string, unknown>;
  assert.equal(record.level, "warn");
  assert.equal(record.container, "vanished");
  assert.equal(record.cgroupPath, "/no/such/cgroup");
});

test("a cgroup file with garbage is EIO and an error log, not a crash", (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-tree-"));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const registry = new ContainerRegistry(stateDir);
  registry.put({ id: "c", cgroupPath: "/", recordedAt: 1 });
  const logs: string[] = [];
  const layout = { v1: new Map([["memory", `${fixtureCgroupDir}/garbage`]]) };
  const tree = createProcviewTree(registry, fixtureSources(layout), createLogger({ write: (line) => logs.push(line) }));
  assert.throws(() => openFile(tree, "containers/c/proc/meminfo"), isErrno(5));
  assert.equal(JSON.parse(logs[0]).level, "error");
});

test("LXCFS layout: each reader sees the cgroup of its own process", (t) => {
  const { tree } = fixtureTree(t);
  const asReader = (pid: number) => ({ pid, uid: 0, gid: 0 });
  assert.equal(openFile(tree, "proc/meminfo", asReader(101)), openFile(tree, "containers/limited/proc/meminfo"));
  assert.equal(openFile(tree, "sys/devices/system/cpu/online", asReader(102)), "0-1\n");
  const v2 = fixtureTree(t, v2FixtureLayout()).tree;
  assert.match(openFile(v2, "proc/meminfo", asReader(201)), /^MemTotal: {9}102400 kB\n/);
});

test("LXCFS layout: a reader in the root cgroup (the host itself) gets the host's task figures", (t) => {
  const { tree } = fixtureTree(t);
  const hostReader = { pid: 301, uid: 0, gid: 0 };
  assert.equal(openFile(tree, "proc/loadavg", hostReader), "0.52 0.58 0.59 2/345 6789\n");
  assert.match(openFile(tree, "proc/stat", hostReader), /^procs_running 7\nprocs_blocked 2\n/m);
  assert.match(openFile(tree, "proc/uptime", hostReader), /^1000\.50 /);
});

test("uptime counts from the init of the reader's pid namespace, LXCFS's origin (a pod sharing its process namespace counts from the pod)", (t) => {
  const tree = v2ContainerTree(t);
  // /pod/ctr's oldest process (201) started at 3 s; 102's namespace's init (101) at 5 s.
  assert.match(openFile(tree, "containers/ctr/proc/uptime"), /^997\.50 /, "a reader of the host: the cgroup's oldest process");
  assert.match(openFile(tree, "containers/ctr/proc/uptime", { pid: 102, uid: 0, gid: 0 }), /^995\.50 /);
});

test("LXCFS layout: a reader whose cpu cgroup is the root counts from its container's oldest process in another hierarchy", (t) => {
  const { tree } = fixtureTree(t);
  // 401 is a host-namespace process limited in memory only (memory:/limited, every other hierarchy at the root).
  const [uptime, idle] = openFile(tree, "proc/uptime", { pid: 401, uid: 0, gid: 0 }).trim().split(" ").map(Number);
  assert.equal(uptime, 995.5);
  assert.ok(idle > 0 && idle <= uptime * 4, `idle ${idle} within uptime × the host's 4 CPUs`);
});

test("the reading thread counts in procs_running, as the kernel counts the reader it runs (v1 and v2)", (t) => {
  const { tree } = fixtureTree(t);
  // 101 sleeps (waiting for this very reply) beside 102 and 103 running.
  assert.match(openFile(tree, "proc/stat", { pid: 101, uid: 0, gid: 0 }), /^procs_running 3\nprocs_blocked 1\n/m);
  assert.match(openFile(tree, "proc/stat", { pid: 102, uid: 0, gid: 0 }), /^procs_running 2\n/m, "a running reader is not counted twice");
  const v2 = v2ContainerTree(t);
  assert.match(openFile(v2, "containers/ctr/proc/stat", { pid: 201, uid: 0, gid: 0 }), /^procs_running 1\nprocs_blocked 0\n/m, "v2: cgroup.threads");
  assert.match(openFile(v2, "containers/ctr/proc/stat", { pid: 301, uid: 0, gid: 0 }), /^procs_running 1\n/m, "a reader outside the container");
});

test("LXCFS layout: a reader's cgroup is read once a tick, and anew for a re-read of an open handle", (t) => {
  const procDir = mkdtempSync(join(tmpdir(), "procview-tree-readers-"));
  t.after(() => rmSync(procDir, { recursive: true, force: true }));
  cpSync(fixtureProcDir, procDir, { recursive: true });
  const registry = new ContainerRegistry(join(procDir, "state"));
  let clock = 0;
  const readerCgroups = new SnapshotCache<CgroupPaths>({ ...readerCgroupCacheOptions, now: () => clock });
  const snapshots = { readerCgroups } as Partial<ViewSnapshots> as ViewSnapshots;
  const sources = { ...fixtureSources(), host: new HostFiles({ procDir, sysDir: fixtureSysDir, now: () => 0 }), snapshots };
  const tree = createProcviewTree(registry, sources, createLogger({ write: () => {} }));
  const reader: RequestContext = { pid: 101, uid: 0, gid: 0 };
  const memTotal = (ctx: RequestContext = reader) => /^MemTotal: +(\d+) kB$/m.exec(openFile(tree, "proc/meminfo", ctx))?.[1];
  const limited = memTotal();
  writeFileSync(join(procDir, "101/cgroup"), "1:memory:/\n0::/\n");
  const host = memTotal({ ...reader, pid: 301 });
  assert.notEqual(limited, host);
  clock += 9;
  assert.equal(memTotal(), limited, "moved to the root cgroup within the tick: still its old cgroup");
  assert.equal(memTotal({ ...reader, rerender: true }), host, "a re-read of an open handle reads it anew");
  writeFileSync(join(procDir, "101/cgroup"), readFileSync(join(fixtureProcDir, "101/cgroup")));
  clock += 10;
  assert.equal(memTotal(), limited, "a tick later, read anew");
});

test("LXCFS layout: a reader without a /proc entry is ENOENT", (t) => {
  const { tree } = fixtureTree(t);
  for (const pid of [105, 0, -1]) {
    assert.throws(() => openFile(tree, "proc/meminfo", { pid, uid: 0, gid: 0 }), isErrno(2), String(pid));
  }
});

test("every view the NRI plugin binds is served for a container and at the root", (t) => {
  const { tree } = fixtureTree(t);
  for (const view of viewFiles) {
    assert.equal(walk(tree, `containers/limited/${view.path}`)?.kind, "file", view.path);
    assert.equal(walk(tree, view.path)?.kind, "file", view.path);
  }
});

test("createTree checks its options", () => {
  assert.throws(() => createTree(null as never), /must be an object/);
  assert.throws(() => createTree({ stateDir: "relative" }), /absolute stateDir/);
  assert.throws(() => createTree({ stateDir: "/tmp", procDir: "proc" }), /procDir must be an absolute path/);
  assert.throws(() => createTree({ stateDir: "/tmp", cpuLimitByQuota: "yes" as never }), /cpuLimitByQuota must be a boolean/);
  assert.throws(() => createTree({ stateDir: "/tmp", loadAverageMemory: new ArrayBuffer(8) as never }), /SharedArrayBuffer/);
  const tree = createTree({ stateDir: "/nonexistent-procview-state" });
  assert.deepEqual((walk(tree, "containers") as DirNode).list(hostCtx), []);
});

test("a container's own cpuLimitByQuota overrides the server's default for its CPU views", (t) => {
  // A cgroup allowed CPUs 0-3 by its cpuset and one CPU's worth by its quota.
  const root = mkdtempSync(join(tmpdir(), "procview-tree-quota-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "cpu/c"), { recursive: true });
  mkdirSync(join(root, "cpuset/c"), { recursive: true });
  writeFileSync(join(root, "cpu/c/cpu.cfs_quota_us"), "100000\n");
  writeFileSync(join(root, "cpu/c/cpu.cfs_period_us"), "100000\n");
  writeFileSync(join(root, "cpu/c/cgroup.procs"), "");
  writeFileSync(join(root, "cpuset/c/cpuset.effective_cpus"), "0-3\n");
  writeFileSync(join(root, "cpuset/c/cpuset.cpus"), "0-3\n");
  const layout: CgroupLayout = { v1: new Map([["cpu", join(root, "cpu")], ["cpuset", join(root, "cpuset")]]), unified: join(root, "none") };
  const registry = new ContainerRegistry(join(root, "state"));
  registry.put({ id: "by-quota", cgroupPath: "/c", recordedAt: 1, cpuLimitByQuota: true });
  registry.put({ id: "by-cpuset", cgroupPath: "/c", recordedAt: 1, cpuLimitByQuota: false });
  registry.put({ id: "server-default", cgroupPath: "/c", recordedAt: 1 });
  const online = (limitByQuota: boolean, id: string) => {
    const tree = createProcviewTree(registry, { ...fixtureSources(layout), cpuView: { limitByQuota } }, createLogger({ write: () => {} }));
    return openFile(tree, `containers/${id}/sys/devices/system/cpu/online`);
  };
  assert.equal(online(false, "by-quota"), "0\n");
  assert.equal(online(false, "server-default"), "0-3\n");
  assert.equal(online(true, "server-default"), "0\n");
  assert.equal(online(true, "by-cpuset"), "0-3\n");
});

test("stat and uptime share a cgroup's CPU time with the host's clock for at most a tick; a re-read of an open handle reads them anew", (t) => {
  const root = mkdtempSync(join(tmpdir(), "procview-tree-cpu-time-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const controller of ["cpu", "cpuacct", "cpuset"]) mkdirSync(join(root, controller, "c"), { recursive: true });
  writeFileSync(join(root, "cpu/c/cgroup.procs"), "");
  writeFileSync(join(root, "cpu/c/tasks"), "");
  writeFileSync(join(root, "cpuset/c/cpuset.effective_cpus"), "0-1\n");
  const useSeconds = (seconds: number) => writeFileSync(join(root, "cpuacct/c/cpuacct.usage_all"), `cpu user system\n0 ${seconds * 1e9} 0\n1 0 0\n`);
  useSeconds(1);
  const layout: CgroupLayout = { v1: new Map(["cpu", "cpuacct", "cpuset"].map((controller) => [controller, join(root, controller)])), unified: join(root, "none") };
  const registry = new ContainerRegistry(join(root, "state"));
  registry.put({ id: "c", cgroupPath: "/c", recordedAt: 1 });
  // Every look at the clock moves it 1 ms on: a sample takes 1 ms to read, so 20 times its cost would keep it 20 ms.
  let clock = 0;
  const cache = <V>() => new SnapshotCache<V>({ ...cpuTimeCacheOptions, now: () => ++clock });
  const snapshots = { cpuWithHostStat: cache(), cpuWithHostUptime: cache() } as Partial<ViewSnapshots> as ViewSnapshots;
  const tree = createProcviewTree(registry, { ...fixtureSources(layout), snapshots }, createLogger({ write: () => {} }));
  const userTicks = (ctx: RequestContext = hostCtx) => Number(/^cpu {2}(\d+) /.exec(openFile(tree, "containers/c/proc/stat", ctx))?.[1]);
  const uptime = (ctx: RequestContext = hostCtx) => openFile(tree, "containers/c/proc/uptime", ctx);

  assert.equal(userTicks(), 100);
  const idleBefore = uptime();
  useSeconds(2);
  assert.equal(userTicks(), 100, "within a tick the sample is shared");
  assert.equal(uptime(), idleBefore);
  clock += 10;
  assert.equal(userTicks(), 200, "a tick after it was read, read anew");
  assert.notEqual(uptime(), idleBefore, "uptime's idle too");
  useSeconds(3);
  assert.equal(userTicks(), 200);
  assert.equal(userTicks({ ...hostCtx, rerender: true }), 300, "a re-read of an open handle reads the files");
  rmSync(join(root, "cpu/c"), { recursive: true });
  assert.throws(() => userTicks(), (error: unknown) => error instanceof FsError && error.errno === 2, "a shared sample does not outlive its cgroup");
});

test("shared snapshots: reads within their validity share one, a re-read of an open handle and expiry gather afresh, a gone cgroup is ENOENT", (t) => {
  const root = mkdtempSync(join(tmpdir(), "procview-tree-shared-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "cpu/c"), { recursive: true });
  mkdirSync(join(root, "cpuset/c"), { recursive: true });
  writeFileSync(join(root, "cpu/c/cgroup.procs"), "");
  writeFileSync(join(root, "cpuset/c/cpuset.effective_cpus"), "0-3\n");
  const layout: CgroupLayout = { v1: new Map([["cpu", join(root, "cpu")], ["cpuset", join(root, "cpuset")]]), unified: join(root, "none") };
  const registry = new ContainerRegistry(join(root, "state"));
  registry.put({ id: "c", cgroupPath: "/c", recordedAt: 1 });
  let clock = 0;
  const cache = <V>() => new SnapshotCache<V>({ ...placementCacheOptions, now: () => clock });
  const snapshots = { threads: cache(), oldestStart: cache(), memory: cache(), io: cache(), placement: cache() } as ViewSnapshots;
  const tree = createProcviewTree(registry, { ...fixtureSources(layout), snapshots }, createLogger({ write: () => {} }));
  const online = (ctx: RequestContext = hostCtx) => openFile(tree, "containers/c/sys/devices/system/cpu/online", ctx);

  assert.equal(online(), "0-3\n");
  writeFileSync(join(root, "cpuset/c/cpuset.effective_cpus"), "0-1\n");
  clock += 50;
  assert.equal(online(), "0-3\n", "within the 100 ms the cpuset is shared");
  assert.equal(online({ ...hostCtx, rerender: true }), "0-1\n", "a re-read of an open handle reads the files");
  writeFileSync(join(root, "cpuset/c/cpuset.effective_cpus"), "0-2\n");
  clock += 101;
  assert.equal(online(), "0-2\n", "expired");
  rmSync(join(root, "cpu/c"), { recursive: true });
  assert.throws(() => online(), (error: unknown) => error instanceof FsError && error.errno === 2, "a shared cpuset does not outlive its cgroup");
});

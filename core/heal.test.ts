import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  containerIdOfRoot,
  findStaleBinds,
  healingJobs,
  processInCgroup,
  procviewDeviceAt,
  readServedDevices,
  scanMountNamespaces,
  viewBindRequests,
  visibleMounts,
  writeServedDevices,
  type NamespaceMounts,
} from "./heal.ts";
import { parseMountinfo } from "./mountinfo.ts";
import { processStartTime } from "./fuse-status.ts";

// A container (runc) with views of a dead mount (0:41), one healed view stacked over a
// dead one, an LXCFS-style bind of the dead mount, and binds of another procview (0:99).
const containerMounts = parseMountinfo(`\
400 300 0:80 / / rw - overlay overlay rw
401 400 0:81 / /proc rw,nosuid,nodev,noexec - proc proc rw
402 401 0:41 /containers/abc/proc/meminfo /proc/meminfo ro - fuse.procview procview ro
403 401 0:41 /containers/abc/proc/cpuinfo /proc/cpuinfo ro - fuse.procview procview ro
404 403 0:68 /containers/abc/proc/cpuinfo /proc/cpuinfo ro - fuse.procview procview ro
405 400 0:41 /proc/uptime /srv/uptime\\040file ro - fuse.procview procview ro
406 401 0:99 /containers/zzz/proc/stat /proc/stat ro - fuse.procview procview ro
407 401 0:41 / /var/lib/procview ro - fuse.procview procview ro
`);

const namespaces: NamespaceMounts[] = [
  { namespace: "mnt:[1]", pid: 1, mounts: parseMountinfo("25 1 254:0 / / rw - ext4 /dev/vda rw\n90 25 0:68 / /var/lib/procview ro - fuse.procview procview ro\n") },
  { namespace: "mnt:[2]", pid: 4242, mounts: containerMounts },
];

test("stale binds: the visible mount at each target, of a listed device only, with the container id of its path", () => {
  assert.deepEqual(findStaleBinds(namespaces, new Set(["0:41"])), [
    { namespace: "mnt:[2]", pid: 4242, target: "/proc/meminfo", root: "/containers/abc/proc/meminfo", device: "0:41", containerId: "abc" },
    { namespace: "mnt:[2]", pid: 4242, target: "/srv/uptime file", root: "/proc/uptime", device: "0:41" },
    { namespace: "mnt:[2]", pid: 4242, target: "/var/lib/procview", root: "/", device: "0:41" },
  ]);
  assert.deepEqual(findStaleBinds(namespaces, new Set()), []);
});

test("healing jobs: one per namespace, each bind replaced by the same path of the live mount", () => {
  const jobs = healingJobs(findStaleBinds(namespaces, new Set(["0:41", "0:99"])), "/var/lib/procview/");
  assert.deepEqual(jobs, [
    {
      pid: 4242,
      namespace: "mnt:[2]",
      binds: [
        { source: "/var/lib/procview/containers/abc/proc/meminfo", target: "/proc/meminfo", mode: "replace" },
        { source: "/var/lib/procview/proc/uptime", target: "/srv/uptime file", mode: "replace" },
        { source: "/var/lib/procview/containers/zzz/proc/stat", target: "/proc/stat", mode: "replace" },
        { source: "/var/lib/procview/", target: "/var/lib/procview", mode: "replace" },
      ],
    },
  ]);
});

test("container ids only from containers/<id>/ paths", () => {
  assert.equal(containerIdOfRoot("/containers/abc/proc/meminfo"), "abc");
  assert.equal(containerIdOfRoot("/containers/abc"), "abc");
  assert.equal(containerIdOfRoot("/proc/meminfo"), undefined);
  assert.equal(containerIdOfRoot("/containers"), undefined);
});

test("the device of the procview mount at a mountpoint is the topmost one's", () => {
  const text = "90 25 0:41 / /var/lib/procview ro - fuse.procview procview ro\n91 90 0:68 / /var/lib/procview ro - fuse.procview procview ro\n92 25 0:70 / /other ro - fuse.lxcfs lxcfs ro\n";
  assert.equal(procviewDeviceAt(text, "/var/lib/procview"), "0:68");
  assert.equal(procviewDeviceAt(text, "/other"), undefined);
});

test("served devices: written privately, read back, garbage ignored", () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-heal-"));
  try {
    assert.deepEqual(readServedDevices(dir), []);
    writeServedDevices(join(dir, "state"), ["0:41", "0:68", "0:41"]);
    assert.deepEqual(readServedDevices(join(dir, "state")), ["0:41", "0:68"]);
    assert.equal(statSync(join(dir, "state", "fuse-devices.json")).mode & 0o777, 0o600);
    writeFileSync(join(dir, "state", "fuse-devices.json"), JSON.stringify({ devices: ["0:1", "../x", 7] }));
    assert.deepEqual(readServedDevices(join(dir, "state")), ["0:1"]);
    writeFileSync(join(dir, "state", "fuse-devices.json"), "not json");
    assert.deepEqual(readServedDevices(join(dir, "state")), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the plugin's requests: nothing where the live mount shows, replace over another procview device, attach over the host's file", () => {
  const source = (view: string) => `/var/lib/procview/containers/abc/proc/${view}`;
  const requests = viewBindRequests(
    visibleMounts(containerMounts),
    [
      { source: source("meminfo"), target: "/proc/meminfo" },
      { source: source("cpuinfo"), target: "/proc/cpuinfo" },
      { source: source("uptime"), target: "/proc/uptime" },
    ],
    "0:68",
  );
  assert.deepEqual(requests, [
    { source: source("meminfo"), target: "/proc/meminfo", mode: "replace" },
    { source: source("uptime"), target: "/proc/uptime", mode: "attach" },
  ]);
});

/** A /proc with the given processes: their mount namespace, start time (ticks after boot), cgroup and mounts. */
function fixtureProc(processes: Array<{ pid: number; command: string; namespace: string; start: number; cgroup: string }>): string {
  const dir = mkdtempSync(join(tmpdir(), "procview-proc-"));
  for (const { pid, command, namespace, start, cgroup } of processes) {
    mkdirSync(join(dir, String(pid), "ns"), { recursive: true });
    symlinkSync(namespace, join(dir, String(pid), "ns", "mnt"));
    // Fields 3 to 21 do not matter here; field 22 is the start time.
    writeFileSync(join(dir, String(pid), "stat"), `${pid} (${command}) S 1 ${Array(17).fill(0).join(" ")} ${start} 0 0\n`);
    writeFileSync(join(dir, String(pid), "cgroup"), `4:memory:${cgroup}\n`);
    writeFileSync(join(dir, String(pid), "mountinfo"), `400 300 0:80 / / rw - overlay overlay rw\n402 400 0:41 /containers/abc/proc/meminfo /proc/meminfo ro - fuse.procview procview ro\n`);
  }
  return dir;
}

test("a namespace or cgroup is reached through its oldest process, not the lowest pid (a short-lived child after the pid counter wrapped)", () => {
  const dir = fixtureProc([
    { pid: 1, command: "init", namespace: "mnt:[1]", start: 1, cgroup: "/" },
    // A container's init started long ago; its shell loop's children got pids from the start again.
    { pid: 212, command: "head", namespace: "mnt:[2]", start: 90_500, cgroup: "/pod/reader" },
    { pid: 30_001, command: "sh (reader) loop", namespace: "mnt:[2]", start: 70_000, cgroup: "/pod/reader" },
    { pid: 215, command: "usleep", namespace: "mnt:[2]", start: 90_501, cgroup: "/pod/reader" },
  ]);
  try {
    assert.deepEqual(
      scanMountNamespaces(dir).map(({ namespace, pid }) => ({ namespace, pid })),
      [
        { namespace: "mnt:[1]", pid: 1 },
        { namespace: "mnt:[2]", pid: 30_001 },
      ],
    );
    assert.equal(processInCgroup("/pod/reader", dir), 30_001);
    assert.equal(processInCgroup("/pod/other", dir), undefined);
    assert.equal(processStartTime(30_001, dir), 70_000, "a command name with spaces and parentheses");
    assert.equal(processStartTime(99, dir), undefined, "a process that exited");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

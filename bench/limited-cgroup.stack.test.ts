/** Real cgroups on this host (root needed): limits land in the controller files, processes move in, folders go. */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { posix } from "node:path";
import { test } from "node:test";
import { parseProcCgroup } from "../core/cgroup-path.ts";
import { locateController, parseCgroupLayout } from "../views/cgroup/layout.ts";
import { createLimitedCgroup } from "./limited-cgroup.ts";

const limits = { memoryBytes: 64 * 1024 * 1024, cpus: "0", cpuQuotaUs: 50_000, cpuPeriodUs: 100_000 };

test("a process moved into the cgroup is limited by it in every controller, and remove() deletes the folders", async () => {
  const layout = parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8"));
  const cgroup = createLimitedCgroup("procview-cgroup-test", limits, layout);
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  const exited = once(child, "exit");
  try {
    await once(child, "spawn");
    cgroup.addProcess(child.pid!);
    const paths = parseProcCgroup(readFileSync(`/proc/${child.pid}/cgroup`, "utf8"));
    const memory = locateController(layout, "memory", cgroup.relativePath)!;
    const cpuset = locateController(layout, "cpuset", cgroup.relativePath)!;
    const cpu = locateController(layout, "cpu", cgroup.relativePath)!;
    const read = (dir: string, file: string) => readFileSync(posix.join(dir, file), "utf8").trim();
    if (memory.version === 1) {
      for (const controller of ["memory", "cpuset", "cpu", "cpuacct"]) assert.equal(paths.get(controller), cgroup.relativePath, controller);
      assert.equal(read(memory.dir, "memory.limit_in_bytes"), String(limits.memoryBytes));
    } else {
      assert.equal(paths.get(""), cgroup.relativePath);
      assert.equal(read(memory.dir, "memory.max"), String(limits.memoryBytes));
    }
    assert.equal(read(cpuset.dir, "cpuset.cpus"), "0");
    if (cpu.version === 1) assert.equal(read(cpu.dir, "cpu.cfs_quota_us"), "50000");
    else assert.equal(read(cpu.dir, "cpu.max"), "50000 100000");
  } finally {
    child.kill("SIGKILL");
    await exited;
    await cgroup.remove();
  }
  assert.equal(existsSync(locateController(layout, "memory", cgroup.relativePath)!.dir), false);
});

test("limits that are not positive whole numbers or a CPU list are refused", () => {
  assert.throws(() => createLimitedCgroup("procview-cgroup-test", { ...limits, memoryBytes: -1 }), /memoryBytes must be a positive integer/);
  assert.throws(() => createLimitedCgroup("procview-cgroup-test", { ...limits, cpuQuotaUs: 0.5 }), /cpuQuotaUs must be a positive integer/);
  assert.throws(() => createLimitedCgroup("procview-cgroup-test", { ...limits, cpus: "0;1" }), /CPU list/);
});

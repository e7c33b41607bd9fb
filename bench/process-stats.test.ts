import assert from "node:assert/strict";
import { test } from "node:test";
import { endedChildrenCpuNs, parseChildrenCpuTicks, parseCpuTicks, parseProcessMemory, processCpuNs, processMemory } from "./process-stats.ts";
import { spawnSync } from "node:child_process";

test("utime + stime from a stat line whose command name holds spaces and parentheses", () => {
  const stat = "4242 (node (worker) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 11 0 213743 1000000 5000";
  assert.equal(parseCpuTicks(stat), 1801n);
  assert.throws(() => parseCpuTicks("4242 (x) S 1"), /not a \/proc\/<pid>\/stat line/);
  assert.equal(parseChildrenCpuTicks(stat), 0n);
  assert.equal(parseChildrenCpuTicks("1 (a) S 1 1 1 0 -1 0 0 0 0 0 10 20 30 40 20 0"), 70n);
});

test("the CPU of children that ended counts once they are waited for", () => {
  const before = endedChildrenCpuNs();
  // Burns 150 ms of its own CPU, however long a busy machine makes that take.
  const burn = "const spent = () => { const u = process.cpuUsage(); return u.user + u.system; }; while (spent() < 150000) {}";
  const result = spawnSync(process.execPath, ["-e", burn]);
  assert.equal(result.status, 0);
  assert.ok(endedChildrenCpuNs() - before >= 100_000_000n, "a child that burnt 150 ms of CPU");
});

test("RSS, peak RSS and the file-backed part from a status text", () => {
  const status = "Name:\tlxcfs\nVmPeak:\t  100000 kB\nVmHWM:\t    3200 kB\nVmRSS:\t    2900 kB\nRssAnon:\t     800 kB\nRssFile:\t    2100 kB\nThreads:\t3\n";
  assert.deepEqual(parseProcessMemory(status), { rssKiB: 2900, peakRssKiB: 3200, fileKiB: 2100 });
  assert.throws(() => parseProcessMemory("Name:\tkthread\n"), /no VmHWM line|no VmRSS line/);
});

test("this process's own CPU time and memory are read from /proc", () => {
  const before = processCpuNs(process.pid);
  const until = Date.now() + 100;
  while (Date.now() < until) {
    // Burn CPU so the tick counter must move.
  }
  assert.ok(processCpuNs(process.pid) > before);
  const memory = processMemory(process.pid);
  assert.ok(memory.rssKiB > 1024 && memory.peakRssKiB >= memory.rssKiB);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDiskstats, parseFree, parseIostat, parseMpstatAll, parseTopCpu, parseVmstat, splitSections } from "./consumers.ts";

// Output as procps 4.0.2 and sysstat 12.6.1 (Debian bookworm) print it, captured in a container with procview's views.

test("free -k: the Mem: rows", () => {
  const text = [
    "               total        used        free      shared  buff/cache   available",
    "Mem:          204800         804      203868           0         128      203996",
    "Swap:              0           0           0",
    "",
    "               total        used        free      shared  buff/cache   available",
    "Mem:          204800       21344      183328           0         128      183456",
    "Swap:              0           0           0",
  ].join("\n");
  assert.deepEqual(parseFree(text), [
    { total: 204800, used: 804, free: 203868, available: 203996 },
    { total: 204800, used: 21344, free: 183328, available: 183456 },
  ]);
});

test("top -b: every frame's %Cpu(s), whatever the padding", () => {
  const text = [
    "top - 17:39:04 up 0 min,  0 user,  load average: 0.08, 0.02, 0.01",
    "%Cpu(s):100.0 us,  0.0 sy,  0.0 ni,  0.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st ",
    "top - 17:39:05 up 0 min,  0 user,  load average: 0.08, 0.02, 0.01",
    "%Cpu(s): 51.2 us,  0.8 sy,  0.0 ni, 48.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st ",
  ].join("\n");
  assert.deepEqual(parseTopCpu(text), [
    { user: 100, system: 0, idle: 0 },
    { user: 51.2, system: 0.8, idle: 48 },
  ]);
});

test("vmstat: rows by the header's names", () => {
  const text = [
    "procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----",
    " r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st",
    " 2  0      0 203380      0    152    0    0  1700  3254  826 3574  0  0 100  0  0",
    " 2  0      0 203380      0    152    0    0   468    36 2165 7349 45  0 55  0  0",
  ].join("\n");
  const rows = parseVmstat(text);
  assert.equal(rows.length, 2);
  assert.deepEqual([rows[1].r, rows[1].us, rows[1].sy, rows[1].id, rows[1].free], [2, 45, 0, 55, 203380]);
});

test("mpstat: the interval rows for all CPUs, not the average", () => {
  const text = [
    "Linux 6.18.44-fc-v1252 (vm) \t12/04/26 \t_x86_64_\t(2 CPU)",
    "",
    "17:39:08     CPU    %usr   %nice    %sys %iowait    %irq   %soft  %steal  %guest  %gnice   %idle",
    "17:39:09     all   52.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00   48.00",
    "17:39:10     all   54.00    0.00    1.00    0.00    0.00    0.00    0.00    0.00    0.00   45.00",
    "Average:     all   53.00    0.00    0.50    0.00    0.00    0.00    0.00    0.00    0.00   46.50",
  ].join("\n");
  assert.deepEqual(parseMpstatAll(text), [
    { usr: 52, sys: 0, idle: 48 },
    { usr: 54, sys: 1, idle: 45 },
  ]);
});

test("iostat -d -k: the first report's device rows; /proc/diskstats: names and kB written", () => {
  const iostat = [
    "Linux 6.18.44-fc-v1252 (vm) \t12/04/26 \t_x86_64_\t(2 CPU)",
    "",
    "Device             tps    kB_read/s    kB_wrtn/s    kB_dscd/s    kB_read    kB_wrtn    kB_dscd",
    "loop0             0.00         0.00         0.00         0.00          0          0          0",
    "vda              42.00        52.00      2272.00        40.00         52       2272         40",
    "",
    "",
    "Device             tps    kB_read/s    kB_wrtn/s    kB_dscd/s    kB_read    kB_wrtn    kB_dscd",
    "vda               1.00         0.00         9.00         0.00          0          9          0",
  ].join("\n");
  assert.deepEqual(parseIostat(iostat), [
    { device: "loop0", writtenKiBPerSecond: 0, writtenKiB: 0 },
    { device: "vda", writtenKiBPerSecond: 2272, writtenKiB: 2272 },
  ]);
  const diskstats = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n 254       0 vda 10 0 2048 0 20 0 4096 0 0 0 0 0 0 0 0 0 0\n";
  assert.deepEqual(parseDiskstats(diskstats), [
    { name: "loop0", writtenKiB: 0 },
    { name: "vda", writtenKiB: 2048 },
  ]);
});

test("sections split at === lines", () => {
  assert.deepEqual([...splitSections("=== a\n1\n2\n=== b\n3\n")], [
    ["a", "1\n2\n"],
    ["b", "3\n\n"],
  ]);
});

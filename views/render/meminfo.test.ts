import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readMemorySnapshot, type MemorySnapshot } from "../cgroup/memory.ts";
import { v1FixtureLayout, v2FixtureLayout } from "../cgroup/testdata/layout.ts";
import { parseHostMeminfo } from "../host/meminfo.ts";
import { fixtureProcDir } from "../host/testdata/paths.ts";
import { formatMeminfoLine, renderMeminfo } from "./meminfo.ts";

const hostText = readFileSync(`${fixtureProcDir}/meminfo`, "latin1");
const host = parseHostMeminfo(hostText);
const MiB = 1024 * 1024;

/** name → number, from rendered text. */
function valuesOf(text: string): Map<string, number> {
  return new Map(text.trimEnd().split("\n").map((line) => {
    const [name, value] = line.split(/:\s+/);
    return [name, Number.parseInt(value, 10)];
  }));
}

test("lines are formatted exactly like the kernel's", () => {
  assert.equal(formatMeminfoLine("MemTotal", 51200, true), "MemTotal:          51200 kB\n");
  assert.equal(formatMeminfoLine("HugePages_Total", 0, false), "HugePages_Total:       0\n");
  assert.equal(formatMeminfoLine("VmallocTotal", 34359738367, true), "VmallocTotal:   34359738367 kB\n");
  const roundTrip = host.lines.map((line) => formatMeminfoLine(line.name, line.value, line.hasKbUnit)).join("");
  assert.equal(roundTrip, hostText);
});

test("v1 limited container: every host line in order, container values where the cgroup has them", () => {
  const text = renderMeminfo(readMemorySnapshot(v1FixtureLayout(), "/limited"), host);
  const lines = text.trimEnd().split("\n");
  assert.deepEqual(lines.map((line) => line.split(":")[0]), host.lines.map((line) => line.name));
  assert.equal(lines[0], "MemTotal:          51200 kB");
  const values = valuesOf(text);
  assert.equal(values.get("MemFree"), 30 * 1024);
  assert.equal(values.get("MemAvailable"), 30 * 1024 + 8 * 1024);
  assert.equal(values.get("Buffers"), 0);
  assert.equal(values.get("Cached"), 8 * 1024);
  assert.equal(values.get("SwapCached"), 256);
  assert.equal(values.get("Active"), 15 * 1024);
  assert.equal(values.get("Inactive"), 5 * 1024);
  assert.equal(values.get("AnonPages"), 12 * 1024);
  assert.equal(values.get("Mapped"), 3 * 1024);
  assert.equal(values.get("Shmem"), 1024);
  assert.equal(values.get("Dirty"), 64);
  assert.equal(values.get("SwapTotal"), 50 * 1024);
  assert.equal(values.get("SwapFree"), 46 * 1024);
  assert.equal(values.get("VmallocTotal"), host.values.get("VmallocTotal"), "lines a cgroup cannot tell are the host's");
  assert.equal(values.get("HugePages_Total"), 0);
});

test("a limit on an ancestor only is the container's MemTotal", () => {
  const values = valuesOf(renderMeminfo(readMemorySnapshot(v1FixtureLayout(), "/parent/child"), host));
  assert.equal(values.get("MemTotal"), 64 * 1024);
  assert.equal(values.get("MemFree"), 34 * 1024);
  assert.equal(values.get("SwapTotal"), 2097148, "unlimited swap is the host's swap");
  assert.equal(values.get("SwapFree"), 2000000, "and no more free swap than the host has");
});

test("no limit, or a limit above the host: host total, and no more free than the host has", () => {
  for (const [layout, path] of [[v1FixtureLayout(), "/"], [v1FixtureLayout(), "/huge"], [v2FixtureLayout(), "/noswap"]] as const) {
    const values = valuesOf(renderMeminfo(readMemorySnapshot(layout, path), host));
    assert.equal(values.get("MemTotal"), 24684096, path);
    assert.ok(values.get("MemFree")! <= host.values.get("MemFree")!, path);
    assert.ok(values.get("MemAvailable")! <= host.values.get("MemAvailable")!, path);
  }
});

test("swap not accounted: host swap lines; swappiness 0: no swap", () => {
  const unaccounted = valuesOf(renderMeminfo(readMemorySnapshot(v1FixtureLayout(), "/noswapaccount"), host));
  assert.equal(unaccounted.get("SwapTotal"), 2097148);
  assert.equal(unaccounted.get("SwapFree"), 2000000);
  const noSwap = valuesOf(renderMeminfo(readMemorySnapshot(v1FixtureLayout(), "/swappiness0"), host));
  assert.equal(noSwap.get("SwapTotal"), 0);
  assert.equal(noSwap.get("SwapFree"), 0);
});

test("usage above the limit and swap above its limit never underflow", () => {
  const v1 = valuesOf(renderMeminfo(readMemorySnapshot(v1FixtureLayout(), "/overlimit"), host));
  assert.equal(v1.get("MemTotal"), 50 * 1024);
  assert.equal(v1.get("MemFree"), 0);
  assert.equal(v1.get("MemAvailable"), 0);
  const v2 = valuesOf(renderMeminfo(readMemorySnapshot(v2FixtureLayout(), "/limited"), host));
  assert.equal(v2.get("SwapTotal"), 10 * 1024);
  assert.equal(v2.get("SwapFree"), 0);
});

test("v2: pod limit, slab lines, MemAvailable counts reclaimable slab and never exceeds MemTotal", () => {
  const values = valuesOf(renderMeminfo(readMemorySnapshot(v2FixtureLayout(), "/pod/ctr"), host));
  assert.equal(values.get("MemTotal"), 100 * 1024);
  assert.equal(values.get("MemFree"), 60 * 1024);
  assert.equal(values.get("MemAvailable"), 60 * 1024 + 15 * 1024 + 1024);
  assert.equal(values.get("Slab"), 1536);
  assert.equal(values.get("SReclaimable"), 1024);
  assert.equal(values.get("SUnreclaim"), 512);
  assert.equal(values.get("KernelStack"), 256);
  assert.equal(values.get("Cached"), 15 * 1024);

  const generous: MemorySnapshot = { limit: 10 * MiB, usage: 1 * MiB, stat: new Map([["active_file", 50 * MiB]]), swap: undefined };
  assert.equal(valuesOf(renderMeminfo(generous, host)).get("MemAvailable"), 10 * 1024);
});

test("missing memory.stat: the container's breakdown lines are 0, not the host's memory", () => {
  const values = valuesOf(renderMeminfo(readMemorySnapshot(v2FixtureLayout(), "/nostat"), host));
  assert.equal(values.get("MemTotal"), 50 * 1024);
  assert.equal(values.get("MemFree"), 40 * 1024);
  for (const line of ["Cached", "Active(anon)", "Active", "Slab", "SReclaimable", "AnonPages", "Shmem"]) assert.equal(values.get(line), 0, line);
  assert.equal(values.get("CommitLimit"), host.values.get("CommitLimit"), "lines no cgroup tells stay the host's");
});

test("v1 has no slab figures per cgroup: slab lines are 0", () => {
  const values = valuesOf(renderMeminfo(readMemorySnapshot(v1FixtureLayout(), "/limited"), host));
  for (const line of ["Slab", "SReclaimable", "SUnreclaim", "KReclaimable", "KernelStack"]) assert.equal(values.get(line), 0, line);
});

test("Mlocked and the other breakdown lines no cgroup counts read 0 next to the container's Unevictable, v1 and v2", () => {
  assert.ok(host.values.get("Mlocked")! > 0, "the fixture host has locked memory");
  for (const memory of [readMemorySnapshot(v1FixtureLayout(), "/limited"), readMemorySnapshot(v2FixtureLayout(), "/pod/ctr")]) {
    const values = valuesOf(renderMeminfo(memory, host));
    assert.equal(values.get("Unevictable"), 0);
    for (const line of ["Mlocked", "ShmemPmdMapped", "FilePmdMapped"]) assert.equal(values.get(line), 0, line);
  }
});

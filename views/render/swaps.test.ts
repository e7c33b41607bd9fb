import { test } from "node:test";
import assert from "node:assert/strict";
import { readMemorySnapshot } from "../cgroup/memory.ts";
import { v1FixtureLayout, v2FixtureLayout } from "../cgroup/testdata/layout.ts";
import { HostFiles } from "../host/host-files.ts";
import { fixtureProcDir } from "../host/testdata/paths.ts";
import { renderSwaps } from "./swaps.ts";

const host = new HostFiles({ procDir: fixtureProcDir }).meminfo();
const header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

test("one virtual device with the container's swap size and use, laid out like the kernel's", () => {
  const text = renderSwaps(readMemorySnapshot(v1FixtureLayout(), "/limited"), host);
  assert.equal(text, `${header}none${" ".repeat(36)}virtual\t51200\t\t4096\t\t0\n`);
});

test("sizes of 10^7 kB and more lose the kernel's extra tab", () => {
  const text = renderSwaps({ limit: Infinity, usage: 0, stat: new Map(), swap: { limit: Infinity, usage: 0 } }, {
    lines: host.lines,
    values: new Map([...host.values, ["SwapTotal", 12000000], ["SwapFree", 12000000]]),
  });
  assert.equal(text.split("\n")[1], `none${" ".repeat(36)}virtual\t12000000\t0\t\t0`);
});

test("no swap: only the header", () => {
  assert.equal(renderSwaps(readMemorySnapshot(v1FixtureLayout(), "/swappiness0"), host), header);
  const noHostSwap = { lines: host.lines, values: new Map([...host.values, ["SwapTotal", 0], ["SwapFree", 0]]) };
  assert.equal(renderSwaps(readMemorySnapshot(v2FixtureLayout(), "/pod/ctr"), noHostSwap), header);
});

test("swap used beyond its limit shows as full, never negative", () => {
  const text = renderSwaps(readMemorySnapshot(v2FixtureLayout(), "/limited"), host);
  assert.equal(text.split("\n")[1], `none${" ".repeat(36)}virtual\t10240\t\t10240\t\t0`);
});

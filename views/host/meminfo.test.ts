import { test } from "node:test";
import assert from "node:assert/strict";
import { HostFiles } from "./host-files.ts";
import { parseHostMeminfo } from "./meminfo.ts";
import { fixtureProcDir } from "./testdata/paths.ts";

test("host meminfo keeps the kernel's order, units and values", () => {
  const host = new HostFiles({ procDir: fixtureProcDir }).meminfo();
  assert.deepEqual(host.lines[0], { name: "MemTotal", value: 24684096, hasKbUnit: true });
  assert.deepEqual(host.lines.find((line) => line.name === "HugePages_Total"), { name: "HugePages_Total", value: 0, hasKbUnit: false });
  assert.equal(host.values.get("SwapTotal"), 2097148);
  assert.equal(host.lines.at(-1)?.name, "DirectMap1G");
});

test("host meminfo without MemTotal is rejected", () => {
  assert.throws(() => parseHostMeminfo("MemFree: 1 kB\n"), /no MemTotal/);
});

test("the running kernel's /proc/meminfo parses", () => {
  const host = new HostFiles().meminfo();
  assert.ok((host.values.get("MemTotal") ?? 0) > 0);
});

test("lines that are not 'Name: number [kB]' are skipped", () => {
  const host = parseHostMeminfo("MemTotal:  100 kB\nBad line\nOdd: 12 MB\nNo Space:1 kB\nAlso bad: x\nHugePages_Total:   3\nTrailing:  5 kB");
  assert.deepEqual(host.lines, [
    { name: "MemTotal", value: 100, hasKbUnit: true },
    { name: "HugePages_Total", value: 3, hasKbUnit: false },
    { name: "Trailing", value: 5, hasKbUnit: true },
  ]);
});

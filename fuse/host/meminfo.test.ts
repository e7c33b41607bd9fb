import { test } from "node:test";
import assert from "node:assert/strict";
import { parseHostMeminfo, readHostMeminfo } from "./meminfo.ts";
import { fixtureProcDir } from "./testdata/paths.ts";

test("host meminfo keeps the kernel's order, units and values", () => {
  const host = readHostMeminfo(`${fixtureProcDir}/meminfo`);
  assert.deepEqual(host.lines[0], { name: "MemTotal", value: 24684096, hasKbUnit: true });
  assert.deepEqual(host.lines.find((line) => line.name === "HugePages_Total"), { name: "HugePages_Total", value: 0, hasKbUnit: false });
  assert.equal(host.values.get("SwapTotal"), 2097148);
  assert.equal(host.lines.at(-1)?.name, "DirectMap1G");
});

test("host meminfo without MemTotal is rejected", () => {
  assert.throws(() => parseHostMeminfo("MemFree: 1 kB\n"), /no MemTotal/);
});

test("the running kernel's /proc/meminfo parses", () => {
  const host = readHostMeminfo();
  assert.ok((host.values.get("MemTotal") ?? 0) > 0);
});

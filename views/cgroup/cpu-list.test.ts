import { test } from "node:test";
import assert from "node:assert/strict";
import { formatCpuList, parseCpuList } from "./cpu-list.ts";

test("CPU lists parse into sorted unique numbers", () => {
  assert.deepEqual(parseCpuList("0-3,8,10-11\n"), [0, 1, 2, 3, 8, 10, 11]);
  assert.deepEqual(parseCpuList("5,1,1"), [1, 5]);
  assert.deepEqual(parseCpuList("\n"), []);
});

test("malformed CPU lists are rejected", () => {
  assert.throws(() => parseCpuList("3-1"), /malformed CPU range/);
  assert.throws(() => parseCpuList("0-999999999"), /malformed CPU range/);
  assert.throws(() => parseCpuList("a"), /malformed CPU list/);
  assert.throws(() => parseCpuList("1,,2"), /malformed CPU list/);
});

test("CPU lists format as the kernel's ranges", () => {
  assert.equal(formatCpuList([0, 1, 2, 3]), "0-3");
  assert.equal(formatCpuList([0, 2, 3, 5]), "0,2-3,5");
  assert.equal(formatCpuList([]), "");
});

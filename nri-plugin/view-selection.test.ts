import assert from "node:assert/strict";
import { test } from "node:test";
import { viewFiles } from "../core/views.ts";
import { parseViewList, viewFilesNamed, viewNameOf, viewNames } from "./view-selection.ts";

test("every view has a distinct short name derived from its target", () => {
  assert.deepEqual(viewNames, ["meminfo", "cpuinfo", "stat", "uptime", "diskstats", "swaps", "loadavg", "cpu/online"]);
  assert.equal(new Set(viewNames).size, viewFiles.length);
  assert.equal(viewNameOf({ path: "sys/devices/system/cpu/online", target: "/sys/devices/system/cpu/online" }), "cpu/online");
});

test("a list is read from text or an array, in catalogue order, without duplicates", () => {
  assert.deepEqual(parseViewList("cpuinfo,MemInfo, cpuinfo"), ["meminfo", "cpuinfo"]);
  assert.deepEqual(parseViewList(["loadavg", "meminfo"]), ["meminfo", "loadavg"]);
  assert.deepEqual(parseViewList("all"), viewNames);
});

test("unknown names, an empty list and all mixed with names are refused with the reason", () => {
  assert.throws(() => parseViewList("meminfo,vmstat"), /unknown view "vmstat"; known views: meminfo/);
  assert.throws(() => parseViewList(""), /empty view list/);
  assert.throws(() => parseViewList("all,meminfo"), /"all" cannot be combined/);
});

test("the files of the named views are the catalogue's entries", () => {
  assert.deepEqual(viewFilesNamed(["cpu/online", "meminfo"]).map((view) => view.target), ["/proc/meminfo", "/sys/devices/system/cpu/online"]);
});

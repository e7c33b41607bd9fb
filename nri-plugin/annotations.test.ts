import assert from "node:assert/strict";
import { test } from "node:test";
import { annotationKeysFor, decideCpuByQuota, decideViewNames, decideViews, isDefaultPolicy } from "./annotations.ts";

const key = "procview.noderesource.dev";

test("the most specific annotation wins: container, then pod, then the bare key", () => {
  const annotations = { [key]: "disabled", [`${key}/pod`]: "enabled", [`${key}/container.app`]: "disabled" };
  assert.deepEqual(decideViews(annotations, "app", "all"), { enabled: false, decidedBy: `${key}/container.app` });
  assert.deepEqual(decideViews(annotations, "sidecar", "all"), { enabled: true, decidedBy: `${key}/pod` });
  assert.deepEqual(decideViews({ [key]: "disabled" }, "app", "all"), { enabled: false, decidedBy: key });
});

test("without annotations the default policy decides", () => {
  assert.deepEqual(decideViews(undefined, "app", "all"), { enabled: true, decidedBy: "default" });
  assert.deepEqual(decideViews({ other: "x" }, "app", "opted-in"), { enabled: false, decidedBy: "default" });
});

test("values are read case-insensitively with spaces trimmed", () => {
  assert.equal(decideViews({ [key]: " Enabled " }, "app", "opted-in").enabled, true);
});

test("an unknown value yields the default and reports the annotation", () => {
  assert.deepEqual(decideViews({ [`${key}/pod`]: "yes", [key]: "enabled" }, "app", "opted-in"), {
    enabled: false,
    decidedBy: "default",
    invalid: { annotation: `${key}/pod`, value: "yes", reason: "expected enabled or disabled" },
  });
});

test("keys and policy names", () => {
  assert.deepEqual(annotationKeysFor("c"), [`${key}/container.c`, `${key}/pod`, key]);
  assert.equal(isDefaultPolicy("opted-in"), true);
  assert.equal(isDefaultPolicy("none"), false);
});

const views = "views.procview.noderesource.dev";
const cpu = "cpu-by-quota.procview.noderesource.dev";

test("a views annotation chooses the container's views, most specific first", () => {
  const annotations = { [`${views}/pod`]: "meminfo", [`${views}/container.app`]: "cpuinfo, meminfo ,cpu/online" };
  assert.deepEqual(decideViewNames(annotations, "app", ["stat"]), {
    value: ["meminfo", "cpuinfo", "cpu/online"],
    decidedBy: `${views}/container.app`,
  });
  assert.deepEqual(decideViewNames(annotations, "sidecar", ["stat"]), { value: ["meminfo"], decidedBy: `${views}/pod` });
  assert.deepEqual(decideViewNames({ [views]: "ALL" }, "app", ["stat"]).value.length, 8);
  assert.deepEqual(decideViewNames(undefined, "app", ["stat"]), { value: ["stat"], decidedBy: "default" });
});

test("a views annotation naming an unknown view leaves the default and says which view", () => {
  const choice = decideViewNames({ [`${views}/container.app`]: "meminfo,vmstat", [views]: "cpuinfo" }, "app", ["stat"]);
  assert.deepEqual(choice.value, ["stat"]);
  assert.equal(choice.decidedBy, "default");
  assert.equal(choice.invalid?.annotation, `${views}/container.app`);
  assert.match(choice.invalid?.reason ?? "", /unknown view "vmstat"/);
  assert.match(decideViewNames({ [views]: " , " }, "app", ["stat"]).invalid?.reason ?? "", /empty view list/);
});

test("a cpu-by-quota annotation overrides the default, and a malformed one keeps it", () => {
  assert.deepEqual(decideCpuByQuota({ [`${cpu}/pod`]: "True" }, "app", undefined), { value: true, decidedBy: `${cpu}/pod` });
  assert.deepEqual(decideCpuByQuota({ [`${cpu}/container.app`]: "false" }, "app", true), { value: false, decidedBy: `${cpu}/container.app` });
  assert.deepEqual(decideCpuByQuota({}, "app", undefined), { value: undefined, decidedBy: "default" });
  assert.deepEqual(decideCpuByQuota({ [cpu]: "1" }, "app", false), {
    value: false,
    decidedBy: "default",
    invalid: { annotation: cpu, value: "1", reason: "expected true or false" },
  });
});

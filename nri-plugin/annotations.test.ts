import assert from "node:assert/strict";
import { test } from "node:test";
import { annotationKeysFor, decideCpuByQuota, decideViewNames, decideViews, isDefaultPolicy } from "./annotations.ts";

const key = "procview.noderesource.dev";

test("the most specific annotation wins: container, then pod, then the bare key", () => {
  const annotations = { [key]: "disabled", [`${key}/pod`]: "enabled", [`${key}/container.app`]: "disabled" };
  assert.deepEqual(decideViews({ pod: annotations, containerName: "app" }, "all"), { enabled: false, decidedBy: `${key}/container.app` });
  assert.deepEqual(decideViews({ pod: annotations, containerName: "sidecar" }, "all"), { enabled: true, decidedBy: `${key}/pod` });
  assert.deepEqual(decideViews({ pod: { [key]: "disabled" }, containerName: "app" }, "all"), { enabled: false, decidedBy: key });
});

test("the container's own annotation is more specific than any of its pod's", () => {
  const pod = { [`${key}/container.app`]: "disabled", [`${key}/pod`]: "disabled" };
  assert.deepEqual(decideViews({ pod, container: { [key]: "enabled" }, containerName: "app" }, "opted-in"), {
    enabled: true,
    decidedBy: `container annotation ${key}`,
  });
  assert.deepEqual(decideViews({ container: { [key]: "disabled" }, containerName: "" }, "all"), {
    enabled: false,
    decidedBy: `container annotation ${key}`,
  });
  // Only the bare key counts on a container: "<key>/pod" there names nothing.
  assert.equal(decideViews({ container: { [`${key}/pod`]: "disabled" }, containerName: "app" }, "all").enabled, true);
  const typo = decideViews({ pod: { [key]: "enabled" }, container: { [key]: "on" }, containerName: "app" }, "opted-in");
  assert.deepEqual(typo.invalid, { annotation: `container annotation ${key}`, value: "on", reason: "expected enabled or disabled" });
  assert.equal(typo.enabled, false, "a bad container value keeps the default, not the pod's choice");
});

test("without annotations the default policy decides", () => {
  assert.deepEqual(decideViews({ pod: undefined, containerName: "app" }, "all"), { enabled: true, decidedBy: "default" });
  assert.deepEqual(decideViews({ pod: { other: "x" }, containerName: "app" }, "opted-in"), { enabled: false, decidedBy: "default" });
});

test("values are read case-insensitively with spaces trimmed", () => {
  assert.equal(decideViews({ pod: { [key]: " Enabled " }, containerName: "app" }, "opted-in").enabled, true);
});

test("an unknown value yields the default and reports the annotation", () => {
  assert.deepEqual(decideViews({ pod: { [`${key}/pod`]: "yes", [key]: "enabled" }, containerName: "app" }, "opted-in"), {
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
  assert.deepEqual(decideViewNames({ pod: annotations, containerName: "app" }, ["stat"]), {
    value: ["meminfo", "cpuinfo", "cpu/online"],
    decidedBy: `${views}/container.app`,
  });
  assert.deepEqual(decideViewNames({ pod: annotations, containerName: "sidecar" }, ["stat"]), { value: ["meminfo"], decidedBy: `${views}/pod` });
  assert.deepEqual(decideViewNames({ pod: { [views]: "ALL" }, containerName: "app" }, ["stat"]).value.length, 8);
  assert.deepEqual(decideViewNames({ pod: undefined, containerName: "app" }, ["stat"]), { value: ["stat"], decidedBy: "default" });
});

test("a views annotation naming an unknown view leaves the default and says which view", () => {
  const choice = decideViewNames({ pod: { [`${views}/container.app`]: "meminfo,vmstat", [views]: "cpuinfo" }, containerName: "app" }, ["stat"]);
  assert.deepEqual(choice.value, ["stat"]);
  assert.equal(choice.decidedBy, "default");
  assert.equal(choice.invalid?.annotation, `${views}/container.app`);
  assert.match(choice.invalid?.reason ?? "", /unknown view "vmstat"/);
  assert.match(decideViewNames({ pod: { [views]: " , " }, containerName: "app" }, ["stat"]).invalid?.reason ?? "", /empty view list/);
});

test("a cpu-by-quota annotation overrides the default, and a malformed one keeps it", () => {
  assert.deepEqual(decideCpuByQuota({ pod: { [`${cpu}/pod`]: "True" }, containerName: "app" }, undefined), { value: true, decidedBy: `${cpu}/pod` });
  assert.deepEqual(decideCpuByQuota({ pod: { [`${cpu}/container.app`]: "false" }, containerName: "app" }, true), { value: false, decidedBy: `${cpu}/container.app` });
  assert.deepEqual(decideCpuByQuota({ pod: {}, containerName: "app" }, undefined), { value: undefined, decidedBy: "default" });
  assert.deepEqual(decideCpuByQuota({ pod: { [cpu]: "1" }, containerName: "app" }, false), {
    value: false,
    decidedBy: "default",
    invalid: { annotation: cpu, value: "1", reason: "expected true or false" },
  });
});

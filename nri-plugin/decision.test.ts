import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultPluginSettings, type PluginSettings } from "./config.ts";
import { decide } from "./decision.ts";
import { viewNames } from "./view-selection.ts";

const enabled = "procview.noderesource.dev";
const views = "views.procview.noderesource.dev";
const cpu = "cpu-by-quota.procview.noderesource.dev";
const optedIn: PluginSettings = { ...defaultPluginSettings, defaultPolicy: "opted-in" };

test("with no annotations the settings decide: views and CPU count", () => {
  assert.deepEqual(decide(undefined, {}, defaultPluginSettings), {
    bind: true,
    views: viewNames,
    cpuByQuota: undefined,
    decidedBy: "default",
    invalid: [],
  });
  assert.deepEqual(decide(undefined, {}, optedIn), { bind: false, reason: "the default policy is opted-in", decidedBy: "default", invalid: [] });
  const settings: PluginSettings = { defaultPolicy: "all", views: ["meminfo"], cpuByQuota: true };
  assert.deepEqual(decide(undefined, {}, settings), { bind: true, views: ["meminfo"], cpuByQuota: true, decidedBy: "default", invalid: [] });
});

test("a container without a pod decides by its own annotations", () => {
  const decision = decide(undefined, { annotations: { [enabled]: "enabled", [views]: "cpuinfo,meminfo", [cpu]: "true" } }, optedIn);
  assert.deepEqual(decision, {
    bind: true,
    views: ["meminfo", "cpuinfo"],
    cpuByQuota: true,
    decidedBy: `container annotation ${enabled}`,
    invalid: [],
  });
  const disabled = decide(undefined, { annotations: { [enabled]: "disabled" } }, defaultPluginSettings);
  assert.deepEqual(disabled, { bind: false, reason: `container annotation ${enabled} disables procview`, decidedBy: `container annotation ${enabled}`, invalid: [] });
});

test("container annotations win over the pod's, key by key", () => {
  const pod = { annotations: { [`${enabled}/pod`]: "disabled", [`${views}/container.app`]: "stat", [`${cpu}/pod`]: "false" } };
  const decision = decide(pod, { name: "app", annotations: { [enabled]: "enabled", [cpu]: "true" } }, defaultPluginSettings);
  assert.equal(decision.bind, true);
  assert.deepEqual(decision.bind && [decision.views, decision.cpuByQuota], [["stat"], true], "views from the pod, CPU count from the container");
  assert.equal(decide(pod, { name: "sidecar" }, defaultPluginSettings).bind, false);
});

test("every unreadable annotation is reported and its choice falls back to the settings", () => {
  const decision = decide(undefined, { annotations: { [enabled]: "yes", [views]: "meminfo,vmstat", [cpu]: "maybe" } }, defaultPluginSettings);
  assert.equal(decision.bind, true);
  assert.deepEqual(decision.bind && decision.views, viewNames);
  assert.deepEqual(
    decision.invalid.map((invalid) => invalid.annotation),
    [`container annotation ${enabled}`, `container annotation ${views}`, `container annotation ${cpu}`],
  );
  assert.match(decision.invalid[1].reason, /unknown view "vmstat"/);
});

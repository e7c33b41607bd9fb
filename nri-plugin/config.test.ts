import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ConfigError, defaultPluginSettings, mergeSettings, parsePluginConfig } from "./config.ts";
import { viewNames } from "./view-selection.ts";

test("YAML and JSON give the same settings", () => {
  const expected = { defaultPolicy: "opted-in", views: ["meminfo", "cpuinfo"], cpuByQuota: true };
  assert.deepEqual(parsePluginConfig("defaultPolicy: opted-in\nviews: [cpuinfo, meminfo]\ncpuByQuota: true\n"), expected);
  assert.deepEqual(parsePluginConfig('{"defaultPolicy": "opted-in", "views": "meminfo,cpuinfo", "cpuByQuota": true}'), expected);
});

test("an empty configuration sets nothing", () => {
  assert.deepEqual(parsePluginConfig(""), {});
  assert.deepEqual(parsePluginConfig("# only a comment\n"), {});
});

function keyOf(text: string): string {
  try {
    parsePluginConfig(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `${err}`);
    return err.key;
  }
  assert.fail(`${JSON.stringify(text)} was accepted`);
}

test("each bad setting is reported with its key", () => {
  assert.equal(keyOf("defaultPolicy: some"), "defaultPolicy");
  assert.equal(keyOf("views: [meminfo, vmstat]"), "views");
  assert.equal(keyOf("views: 3"), "views");
  assert.equal(keyOf("cpuByQuota: yes please"), "cpuByQuota");
  assert.equal(keyOf("default-policy: all"), "default-policy");
  assert.throws(() => parsePluginConfig("views: [meminfo, vmstat]"), /^Error: views: unknown view "vmstat"/);
});

test("a document that is not a mapping, or not YAML, is refused as a whole", () => {
  assert.equal(keyOf("- a\n- b"), "");
  assert.equal(keyOf("{ unclosed"), "");
  assert.throws(() => parsePluginConfig("{ unclosed"), /not valid YAML or JSON/);
});

test("later layers override earlier ones only where they set a value", () => {
  assert.deepEqual(mergeSettings(), defaultPluginSettings);
  assert.deepEqual(defaultPluginSettings.views, viewNames);
  const file = { defaultPolicy: "opted-in", views: ["meminfo"], cpuByQuota: false } as const;
  const configure = { views: ["cpuinfo"] };
  const flags = { cpuByQuota: true, defaultPolicy: undefined };
  assert.deepEqual(mergeSettings(file, configure, flags), { defaultPolicy: "opted-in", views: ["cpuinfo"], cpuByQuota: true });
});

test("the shipped conf.d file (deploy/nri/10-procview.conf) is a valid configuration that sets nothing", () => {
  const moduleUrl = import.meta.url;
  assert.deepEqual(parsePluginConfig(readFileSync(new URL("../deploy/nri/10-procview.conf", moduleUrl), "utf8")), {});
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { observePlugin, type PluginObserver } from "./observed-plugin.ts";
import type { NriPlugin } from "../nri/stub.ts";
import { eventMask } from "../nri/stub.ts";

function recorder(): { seen: string[]; observer: PluginObserver } {
  const seen: string[] = [];
  return {
    seen,
    observer: {
      configured: (runtime) => seen.push(`configured ${runtime.name} ${runtime.version}`),
      synchronized: () => seen.push("synchronized"),
      closed: () => seen.push("closed"),
      event: (name, result) => seen.push(`${name} ${result}`),
    },
  };
}

test("the observer sees the connection and each event with its result; answers pass through", async () => {
  const { seen, observer } = recorder();
  const plugin: NriPlugin = {
    configure: () => {},
    synchronize: () => [{ container_id: "x" }],
    createContainer: () => ({ adjust: { mounts: [] } }),
    stopContainer: () => {
      throw new Error("boom");
    },
    onClose: () => seen.push("plugin onClose"),
  };
  const observed = observePlugin(plugin, observer);
  await observed.configure!({ runtime_name: "containerd", runtime_version: "1.7.24" });
  assert.deepEqual(await observed.synchronize!([], []), [{ container_id: "x" }]);
  assert.deepEqual(await observed.createContainer!({}), { adjust: { mounts: [] } });
  await assert.rejects(Promise.resolve(observed.stopContainer!({})), /boom/);
  observed.onClose!();
  assert.deepEqual(seen, [
    "configured containerd 1.7.24",
    "configure ok",
    "synchronize ok",
    "synchronized",
    "create_container ok",
    "stop_container error",
    "closed",
    "plugin onClose",
  ]);
});

test("the observed plugin subscribes to the same events; no observer, the plugin itself", () => {
  const plugin: NriPlugin = { createContainer: () => ({}) };
  assert.equal(eventMask(observePlugin(plugin, recorder().observer)), eventMask(plugin));
  assert.equal(observePlugin(plugin, undefined), plugin);
});

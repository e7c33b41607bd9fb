import { test } from "node:test";
import assert from "node:assert/strict";
import { observePlugin, type PluginObserver } from "./observed-plugin.ts";
import type { NriPlugin } from "../nri/stub.ts";
import { eventMask } from "../nri/stub.ts";
import { NriEvent, type CreateContainerResponse, type StateChangeEvent } from "../nri/api.ts";

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

test("a class-shaped plugin, its handlers on the prototype, is observed with the same handlers and events", async () => {
  const { seen, observer } = recorder();
  class Policy implements NriPlugin {
    readonly stateChangeEvents = [NriEvent.REMOVE_CONTAINER];
    readonly #removed: string[] = [];
    stateChange(event: StateChangeEvent): void {
      this.#removed.push(event.container?.id ?? "");
    }
    createContainer(): CreateContainerResponse {
      return { adjust: { mounts: [{ destination: `/after-${this.#removed.length}-removals` }] } };
    }
  }
  const plugin = new Policy();
  const observed = observePlugin(plugin, observer);
  assert.equal(eventMask(observed), eventMask(plugin));
  await observed.stateChange!({ event: NriEvent.REMOVE_CONTAINER, container: { id: "gone" } as StateChangeEvent["container"] });
  assert.deepEqual(await observed.createContainer!({}), { adjust: { mounts: [{ destination: "/after-1-removals" }] } });
  assert.deepEqual(seen, ["state_change ok", "create_container ok"]);
});

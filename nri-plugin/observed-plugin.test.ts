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
      event: (name, result, seconds) => {
        assert.ok(seconds >= 0 && seconds < 5, `${name} took ${seconds} s`);
        seen.push(`${name} ${result}`);
      },
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

test("the observer gets how long each handler took, a failed one included", async () => {
  const took: Record<string, number> = {};
  const observer: PluginObserver = { configured: () => {}, synchronized: () => {}, closed: () => {}, event: (name, _result, seconds) => (took[name] = seconds) };
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const observed = observePlugin(
    {
      createContainer: async () => {
        await pause(40);
        return {};
      },
      stopContainer: async () => {
        await pause(20);
        throw new Error("late and failed");
      },
    },
    observer,
  );
  await observed.createContainer!({});
  await assert.rejects(Promise.resolve(observed.stopContainer!({})), /late and failed/);
  assert.ok(took.create_container >= 0.039 && took.create_container < 2, `create_container: ${took.create_container} s`);
  assert.ok(took.stop_container >= 0.019 && took.stop_container < 2, `stop_container: ${took.stop_container} s`);
});

/**
 * A plugin wrapped so that its connection and its events can be watched from outside
 * (status file, metrics) without the policy or the stub knowing. The wrapper has exactly
 * the handlers of the plugin it wraps: the stub subscribes to the events a plugin handles.
 */

import type { NriPlugin } from "../nri/stub.ts";

export type EventResult = "ok" | "error";

export interface PluginObserver {
  /** Configure arrived: the runtime's name and version. */
  configured(runtime: { name: string; version: string }): void;
  /** Synchronize answered: registered, new containers get views. */
  synchronized(): void;
  /** The connection is gone. */
  closed(): void;
  /** One lifecycle event, how the handler ended and how long it took (the plugin's own share of the runtime's wait). */
  event(name: string, result: EventResult, seconds: number): void;
}

type Handler = (...args: never[]) => unknown;

const eventNames: Partial<Record<keyof NriPlugin, string>> = {
  configure: "configure",
  synchronize: "synchronize",
  createContainer: "create_container",
  updateContainer: "update_container",
  stopContainer: "stop_container",
  stateChange: "state_change",
  shutdown: "shutdown",
};

/** The plugin itself when nobody observes. */
export function observePlugin(plugin: NriPlugin, observer: PluginObserver | undefined): NriPlugin {
  if (!observer) return plugin;
  // Built key by key, not spread: a class's handlers live on its prototype.
  const observed: NriPlugin = { stateChangeEvents: plugin.stateChangeEvents, eventFields: plugin.eventFields };
  for (const [key, name] of Object.entries(eventNames) as [keyof NriPlugin, string][]) {
    const handler = plugin[key] as Handler | undefined;
    if (typeof handler !== "function") continue;
    (observed as Record<string, unknown>)[key] = async (...args: never[]) => {
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      try {
        const result = await handler.apply(plugin, args);
        observer.event(name, "ok", seconds());
        return result;
      } catch (err) {
        observer.event(name, "error", seconds());
        throw err;
      }
    };
  }
  const configure = observed.configure;
  observed.configure = async (request) => {
    observer.configured({ name: request.runtime_name ?? "", version: request.runtime_version ?? "" });
    await configure?.(request);
  };
  const synchronize = observed.synchronize;
  observed.synchronize = async (pods, containers) => {
    const update = (await synchronize?.(pods, containers)) ?? [];
    observer.synchronized();
    return update;
  };
  const onClose = plugin.onClose;
  observed.onClose = () => {
    observer.closed();
    onClose?.call(plugin);
  };
  return observed;
}

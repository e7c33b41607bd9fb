/**
 * The NRI plugin's settings and where they come from. Lowest to highest precedence:
 *
 *   built-in defaults < --config FILE < the config string of containerd's Configure < flags
 *
 * Configure's string is what containerd reads from /etc/nri/conf.d/NN-procview.conf for
 * a pre-launched plugin: the operator's per-node file for the plugin containerd starts,
 * so it overrides a file baked into the plugin's own command line. Flags stay on top
 * because they are the most explicit, per-invocation choice.
 *
 * Both the file and Configure's string are YAML (JSON is YAML too):
 *
 *   defaultPolicy: all            # all | opted-in
 *   views: [meminfo, cpuinfo]     # or "meminfo,cpuinfo", or all
 *   cpuByQuota: true              # absent: the FUSE server's --cpu-limit-by-quota decides
 */

import { createRequire } from "node:module";
import type { parse as YamlParse } from "yaml";
import { isDefaultPolicy, type DefaultPolicy } from "./annotations.ts";
import { parseViewList, viewNames } from "./view-selection.ts";

export interface PluginSettings {
  /** Whether containers without a procview annotation get views. */
  defaultPolicy: DefaultPolicy;
  /** The views a container gets when no views annotation chooses (names from view-selection.ts). */
  views: readonly string[];
  /** Per-container CPU count by quota when no annotation chooses; undefined leaves it to the FUSE server. */
  cpuByQuota?: boolean;
}

/** Settings one source gives; the rest come from sources below it. */
export type PluginSettingsLayer = Partial<PluginSettings>;

export const defaultPluginSettings: PluginSettings = { defaultPolicy: "all", views: viewNames };

/** A configuration that cannot be used, naming the key at fault. */
export class ConfigError extends Error {
  readonly key: string;

  constructor(key: string, message: string) {
    super(key === "" ? message : `${key}: ${message}`);
    this.key = key;
  }
}

const knownKeys = ["defaultPolicy", "views", "cpuByQuota"];

/**
 * The YAML parser, loaded at the first configuration read rather than with this module:
 * procview-runc loads the settings code on every `create` but reads a file only where one
 * exists, and loading yaml costs more than the rest of that path (~13 ms).
 */
const yamlParse = (text: string): unknown => (createRequire(import.meta.url)("yaml") as { parse: typeof YamlParse }).parse(text);

/** Reads a YAML or JSON configuration. Throws ConfigError naming the offending key. */
export function parsePluginConfig(text: string): PluginSettingsLayer {
  let document: unknown;
  try {
    document = yamlParse(text);
  } catch (err) {
    throw new ConfigError("", `not valid YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  // An empty file or conf.d entry means "no settings", not an error.
  if (document === null || document === undefined) return {};
  if (typeof document !== "object" || Array.isArray(document)) {
    throw new ConfigError("", `expected a mapping of settings (${knownKeys.join(", ")})`);
  }
  const entries = document as Record<string, unknown>;
  for (const key of Object.keys(entries)) {
    if (!knownKeys.includes(key)) throw new ConfigError(key, `unknown setting; known settings: ${knownKeys.join(", ")}`);
  }
  const layer: PluginSettingsLayer = {};
  if (entries.defaultPolicy !== undefined) {
    const policy = entries.defaultPolicy;
    if (typeof policy !== "string" || !isDefaultPolicy(policy)) throw new ConfigError("defaultPolicy", `must be all or opted-in, not ${JSON.stringify(policy)}`);
    layer.defaultPolicy = policy;
  }
  if (entries.views !== undefined) layer.views = viewsSetting(entries.views);
  if (entries.cpuByQuota !== undefined) {
    if (typeof entries.cpuByQuota !== "boolean") throw new ConfigError("cpuByQuota", `must be true or false, not ${JSON.stringify(entries.cpuByQuota)}`);
    layer.cpuByQuota = entries.cpuByQuota;
  }
  return layer;
}

function viewsSetting(value: unknown): readonly string[] {
  const isList = Array.isArray(value) && value.every((item) => typeof item === "string");
  if (typeof value !== "string" && !isList) throw new ConfigError("views", `must be a list of view names or a comma-separated string, not ${JSON.stringify(value)}`);
  try {
    return parseViewList(value as string | string[]);
  } catch (err) {
    throw new ConfigError("views", (err as Error).message);
  }
}

/** The effective settings: each layer, lowest precedence first, overrides what it sets. */
export function mergeSettings(...layers: readonly PluginSettingsLayer[]): PluginSettings {
  const merged: PluginSettings = { ...defaultPluginSettings };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return merged;
}

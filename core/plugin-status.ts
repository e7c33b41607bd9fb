/**
 * The NRI plugin's status file, `<state-dir>/nri.json`: whether it is connected to the
 * runtime and which runtime that is, for `procview status` and the plugin's /readyz.
 * Written atomically at each change of connection, so a reader never sees half a file.
 */

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface PluginStatus {
  pid: number;
  /** procview's version of the plugin process. */
  version: string;
  name: string;
  index: string;
  /** Registered with the runtime and synchronized: containers created now get views. */
  connected: boolean;
  /** From the runtime's Configure request. */
  runtime?: { name: string; version: string };
  /** Unix milliseconds of the last change of `connected`. */
  since: number;
}

export function pluginStatusFile(stateDir: string): string {
  return join(stateDir, "nri.json");
}

export function writePluginStatus(stateDir: string, status: PluginStatus): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const file = pluginStatusFile(stateDir);
  writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(status) + "\n");
  renameSync(`${file}.${process.pid}.tmp`, file);
}

/** Removes the file if it is still this process's (a successor may have replaced it). */
export function clearPluginStatus(stateDir: string, pid: number): void {
  if (readPluginStatus(stateDir)?.pid === pid) rmSync(pluginStatusFile(stateDir), { force: true });
}

export function readPluginStatus(stateDir: string): PluginStatus | undefined {
  let value: Partial<PluginStatus>;
  try {
    value = JSON.parse(readFileSync(pluginStatusFile(stateDir), "utf8")) as Partial<PluginStatus>;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(value.pid) || typeof value.connected !== "boolean") return undefined;
  return {
    pid: value.pid!,
    version: String(value.version ?? "unknown"),
    name: String(value.name ?? ""),
    index: String(value.index ?? ""),
    connected: value.connected,
    ...(value.runtime && { runtime: { name: String(value.runtime.name), version: String(value.runtime.version) } }),
    since: typeof value.since === "number" ? value.since : 0,
  };
}

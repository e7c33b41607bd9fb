/**
 * procview's part of `create` and `run`: decide from the container's OCI annotations
 * (nri-plugin/decision.ts, the same policy as the NRI plugin), record the container for
 * the FUSE server, and add the read-only view binds to the bundle's config.json.
 *
 * Never fails the container: whatever goes wrong, config.json is left as it was (or
 * holds every bind, never some), one log line says why, and runc runs.
 */

import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkFuseLiveness, hostLivenessProbe, readFuseStatus, type Liveness } from "../core/fuse-status.ts";
import { containerRecord, ContainerRegistry, defaultStateDir } from "../core/registry.ts";
import { viewMounts } from "../core/views.ts";
import { mergeSettings, parsePluginConfig, type PluginSettings } from "../nri-plugin/config.ts";
import { decide } from "../nri-plugin/decision.ts";
import { viewFilesNamed } from "../nri-plugin/view-selection.ts";
import type { RuncGlobals } from "./args.ts";
import type { RuncLog } from "./log.ts";
import { effectiveCgroupsPath, engineIdentity, mountedTargets, parseSpec, specAnnotations, withMounts } from "./spec.ts";

/** procview-runc's settings file when PROCVIEW_RUNC_CONFIG names none; absent means the defaults. */
export const defaultRuntimeConfig = "/etc/procview/procview-runc.yaml";

/** The process environment; procview-runc reads PROCVIEW_STATE_DIR and PROCVIEW_RUNC_CONFIG. */
export type Environment = Readonly<Record<string, string | undefined>>;

export interface BundleRequest {
  id: string;
  /** The bundle folder: --bundle, else the working directory. */
  bundle: string;
  globals: RuncGlobals;
  env: Environment;
  log: RuncLog;
  /** Whether the FUSE server at the status's mountpoint serves; the host's mount table by default. */
  liveness?: (stateDir: string, mountpoint: string) => Liveness | Promise<Liveness>;
  now?: () => number;
}

/** Settings from the file (same format as `procview nri --config`); throws naming the file. */
export function runtimeSettings(env: Environment): PluginSettings {
  const file = env.PROCVIEW_RUNC_CONFIG ?? defaultRuntimeConfig;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    // No settings file at the default place is the ordinary case: the defaults apply.
    if (env.PROCVIEW_RUNC_CONFIG === undefined && (err as NodeJS.ErrnoException).code === "ENOENT") return mergeSettings();
    throw new Error(`settings file ${file}: ${(err as Error).message}`);
  }
  try {
    return mergeSettings(parsePluginConfig(text));
  } catch (err) {
    throw new Error(`settings file ${file}: ${(err as Error).message}`);
  }
}

const hostLiveness = (stateDir: string, mountpoint: string) => checkFuseLiveness(mountpoint, hostLivenessProbe(stateDir));

/** Adds the container's views to its bundle when procview should; true when it did. */
export async function addViewsToBundle(request: BundleRequest): Promise<boolean> {
  const { id, globals, log } = request;
  const configFile = join(request.bundle, "config.json");
  const stateDir = request.env.PROCVIEW_STATE_DIR || defaultStateDir;
  let recorded: ContainerRegistry | undefined;
  try {
    const spec = parseSpec(readFileSync(configFile, "utf8"));
    const annotations = specAnnotations(spec);
    const identity = engineIdentity(annotations);
    if (identity.sandbox) return false;
    const decision = decide(undefined, { name: identity.name, annotations }, runtimeSettings(request.env));
    for (const invalid of decision.invalid) {
      log("warning", `ignoring ${invalid.annotation}=${JSON.stringify(invalid.value)} (${invalid.reason}); using the default`);
    }
    if (!decision.bind) {
      log("debug", `no views for container ${id}: ${decision.reason}`);
      return false;
    }
    const views = viewFilesNamed(decision.views);
    const taken = mountedTargets(spec, views.map((view) => view.target));
    if (taken.length > 0) {
      // The NRI plugin (or the user) bound them already: a second bind would only hide the first.
      log("debug", `no views added to container ${id}: config.json already mounts ${taken.join(", ")}`);
      return false;
    }
    const status = readFuseStatus(stateDir);
    if (status === undefined) throw new Error(`no FUSE server: ${join(stateDir, "fuse.json")} is missing (is 'procview fuse --state-dir ${stateDir}' running?)`);
    const live = await (request.liveness ?? hostLiveness)(stateDir, status.mountpoint);
    if (!live.live) throw new Error(`the FUSE server is not serving: ${live.reason}`);
    const cgroupsPath = effectiveCgroupsPath(spec, id, globals.systemdCgroup);
    if (cgroupsPath === undefined) throw new Error("config.json sets no linux.cgroupsPath, so the container's cgroup is unknown");
    const record = containerRecord({ id, cgroupsPath, name: identity.name, pod: identity.pod }, (request.now ?? Date.now)(), decision.cpuByQuota);
    // The record first: runc binds the FUSE files, and the FUSE tree serves only recorded containers.
    recorded = new ContainerRegistry(stateDir);
    recorded.put(record);
    writeFileAtomically(configFile, JSON.stringify(withMounts(spec, viewMounts(status.mountpoint, id, views))));
    log("debug", `container ${id}: binding ${decision.views.join(", ")} from ${status.mountpoint} (cgroup ${record.cgroupPath})`);
    return true;
  } catch (err) {
    try {
      recorded?.remove(id);
    } catch {
      // Nothing more to undo: a stale record costs a few bytes on tmpfs and goes at delete.
    }
    log("warning", `container ${id} starts without procview views: ${(err as Error).message}`);
    return false;
  }
}

/** Replaces `file` whole, keeping its mode: runc never reads half a config.json. */
function writeFileAtomically(file: string, text: string): void {
  const temp = `${file}.procview.${process.pid}.tmp`;
  try {
    writeFileSync(temp, text, { mode: statSync(file).mode & 0o7777 });
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** After `delete`: forget the container unless runc still has it (a failed delete of a running one). */
export function forgetDeleted(id: string, env: Environment, runcStillHasIt: boolean): void {
  if (runcStillHasIt) return;
  new ContainerRegistry(env.PROCVIEW_STATE_DIR || defaultStateDir).remove(id);
}

/**
 * What procview-runc reads from and adds to an OCI bundle's config.json. Pure: the parsed
 * document in, facts or a new document out; every field procview does not touch is kept
 * as it was.
 */

import type { ViewMount } from "../core/views.ts";

/** The parts of an OCI runtime spec procview reads; the rest passes through untouched. */
export interface OciSpec {
  annotations?: Record<string, string>;
  /** Each mount keeps its other fields (type, source, options) as written. */
  mounts?: Array<{ destination?: string }>;
  linux?: { cgroupsPath?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** A config.json text as a spec; throws with the reason when it is not one. */
export function parseSpec(text: string): OciSpec {
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("config.json is not a JSON object");
  const spec = value as OciSpec;
  if (spec.mounts !== undefined && !Array.isArray(spec.mounts)) throw new Error("config.json: mounts is not a list");
  if (spec.annotations !== undefined && (typeof spec.annotations !== "object" || spec.annotations === null)) {
    throw new Error("config.json: annotations is not an object");
  }
  return spec;
}

/** The container's OCI annotations with string values (others cannot be procview's). */
export function specAnnotations(spec: OciSpec): Record<string, string> {
  return Object.fromEntries(Object.entries(spec.annotations ?? {}).filter(([, value]) => typeof value === "string"));
}

/**
 * The cgroups path runc will use: linux.cgroupsPath, or runc's own default under the
 * systemd driver (`system.slice:runc:<id>`). Under cgroupfs runc places a container
 * without a path relative to its own cgroup, which we cannot know for sure: undefined.
 */
export function effectiveCgroupsPath(spec: OciSpec, id: string, systemdCgroup: boolean): string | undefined {
  const path = spec.linux?.cgroupsPath;
  if (typeof path === "string" && path !== "") return path;
  return systemdCgroup ? `system.slice:runc:${id}` : undefined;
}

/**
 * The name, pod and kind of the container as its engine annotated it: containerd's CRI
 * (io.kubernetes.cri.*) and nerdctl (nerdctl/name).
 */
export interface EngineIdentity {
  name?: string;
  pod?: { name?: string; namespace?: string; uid?: string };
  /** A CRI pod's sandbox (pause) container: it runs no workload, and never reads /proc. */
  sandbox: boolean;
}

export function engineIdentity(annotations: Readonly<Record<string, string>>): EngineIdentity {
  const podName = annotations["io.kubernetes.cri.sandbox-name"];
  return {
    name: annotations["io.kubernetes.cri.container-name"] ?? annotations["nerdctl/name"],
    ...(podName !== undefined && {
      pod: { name: podName, namespace: annotations["io.kubernetes.cri.sandbox-namespace"], uid: annotations["io.kubernetes.cri.sandbox-uid"] },
    }),
    sandbox: annotations["io.kubernetes.cri.container-type"] === "sandbox",
  };
}

/** Destinations among `targets` that the spec already mounts something on (say, the NRI plugin's binds). */
export function mountedTargets(spec: OciSpec, targets: readonly string[]): string[] {
  const destinations = new Set((spec.mounts ?? []).map((mount) => mount.destination?.replace(/\/+$/, "")));
  return targets.filter((target) => destinations.has(target));
}

/** The spec with `mounts` appended: after /proc and /sys, which they cover. */
export function withMounts(spec: OciSpec, mounts: readonly ViewMount[]): OciSpec {
  return { ...spec, mounts: [...(spec.mounts ?? []), ...mounts] };
}

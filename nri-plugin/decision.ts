/**
 * The one decision both ways into a container make: the NRI plugin (pod and container
 * annotations) and the procview-runc runtime (the container's OCI annotations alone).
 * Pure: annotations and settings in, the views to bind or the reason not to out.
 */

import { decideCpuByQuota, decideViewNames, decideViews, type InvalidAnnotation } from "./annotations.ts";
import type { PluginSettings } from "./config.ts";

export interface AnnotatedPod {
  annotations?: Readonly<Record<string, string>>;
}

export interface AnnotatedContainer {
  /** Names the pod's `<key>/container.<name>` annotations; "" when unknown. */
  name?: string;
  annotations?: Readonly<Record<string, string>>;
}

export type ViewDecision =
  | {
      bind: true;
      /** View names (view-selection.ts), in catalogue order. */
      views: readonly string[];
      /** undefined leaves the CPU count to the FUSE server's default. */
      cpuByQuota: boolean | undefined;
      /** The annotation that enabled procview, or "default". */
      decidedBy: string;
      /** Annotations whose values could not be read (each fell back to its default): log them. */
      invalid: InvalidAnnotation[];
    }
  | { bind: false; reason: string; decidedBy: string; invalid: InvalidAnnotation[] };

/** Whether and which views `container` (of `pod`, if it has one) gets under `settings`. */
export function decide(pod: AnnotatedPod | undefined, container: AnnotatedContainer, settings: PluginSettings): ViewDecision {
  const sources = { pod: pod?.annotations, container: container.annotations, containerName: container.name ?? "" };
  const invalid: InvalidAnnotation[] = [];
  const policy = decideViews(sources, settings.defaultPolicy);
  if (policy.invalid) invalid.push(policy.invalid);
  if (!policy.enabled) {
    const reason = policy.decidedBy === "default" ? `the default policy is ${settings.defaultPolicy}` : `${policy.decidedBy} disables procview`;
    return { bind: false, reason, decidedBy: policy.decidedBy, invalid };
  }
  const views = decideViewNames(sources, settings.views);
  const cpuByQuota = decideCpuByQuota(sources, settings.cpuByQuota);
  for (const choice of [views, cpuByQuota]) if (choice.invalid) invalid.push(choice.invalid);
  return { bind: true, views: views.value, cpuByQuota: cpuByQuota.value, decidedBy: policy.decidedBy, invalid };
}

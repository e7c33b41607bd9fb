/**
 * Per-pod and per-container opt-in/opt-out through pod annotations, following the
 * NRI sample plugins' convention: the most specific key wins.
 *
 *   procview.noderesource.dev/container.<name>: enabled | disabled
 *   procview.noderesource.dev/pod:              enabled | disabled
 *   procview.noderesource.dev:                  enabled | disabled
 */

export const annotationDomain = "procview.noderesource.dev";

/** Which containers get views when no annotation decides: all of them, or only opted-in ones. */
export type DefaultPolicy = "all" | "opted-in";

export function isDefaultPolicy(value: string): value is DefaultPolicy {
  return value === "all" || value === "opted-in";
}

export interface PolicyDecision {
  enabled: boolean;
  /** The annotation that decided, or "default". */
  decidedBy: string;
  /** An annotation with a value other than enabled/disabled, for the caller to log. */
  invalid?: { annotation: string; value: string };
}

export function annotationKeysFor(containerName: string): string[] {
  return [`${annotationDomain}/container.${containerName}`, `${annotationDomain}/pod`, annotationDomain];
}

export function decideViews(
  podAnnotations: Readonly<Record<string, string>> | undefined,
  containerName: string,
  defaultPolicy: DefaultPolicy,
): PolicyDecision {
  const byDefault = { enabled: defaultPolicy === "all", decidedBy: "default" };
  for (const annotation of annotationKeysFor(containerName)) {
    const value = podAnnotations?.[annotation];
    if (value === undefined) continue;
    const normalized = value.trim().toLowerCase();
    if (normalized === "enabled") return { enabled: true, decidedBy: annotation };
    if (normalized === "disabled") return { enabled: false, decidedBy: annotation };
    // A typo must not silently flip the decision made by a less specific key.
    return { ...byDefault, invalid: { annotation, value } };
  }
  return byDefault;
}

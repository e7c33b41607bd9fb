/**
 * Per-pod and per-container choices through pod annotations, following the NRI sample
 * plugins' convention: the most specific key wins.
 *
 *   procview.noderesource.dev/container.<name>:              enabled | disabled
 *   views.procview.noderesource.dev/container.<name>:        meminfo,cpuinfo,… | all
 *   cpu-by-quota.procview.noderesource.dev/container.<name>: true | false
 *
 * each also as `<key>/pod` (every container of the pod) and `<key>` alone. A value that
 * cannot be read falls back to the default (not to a less specific key: a typo must not
 * silently hand the decision to a broader annotation) and is reported for the caller to log.
 */

import { parseViewList } from "./view-selection.ts";

export const annotationDomain = "procview.noderesource.dev";
export const viewsAnnotationDomain = `views.${annotationDomain}`;
export const cpuByQuotaAnnotationDomain = `cpu-by-quota.${annotationDomain}`;

/** Which containers get views when no annotation decides: all of them, or only opted-in ones. */
export type DefaultPolicy = "all" | "opted-in";

export function isDefaultPolicy(value: string): value is DefaultPolicy {
  return value === "all" || value === "opted-in";
}

/** An annotation whose value could not be read, for the caller to log. */
export interface InvalidAnnotation {
  annotation: string;
  value: string;
  reason: string;
}

export interface AnnotationChoice<T> {
  value: T;
  /** The annotation that decided, or "default". */
  decidedBy: string;
  invalid?: InvalidAnnotation;
}

export interface PolicyDecision {
  enabled: boolean;
  /** The annotation that decided, or "default". */
  decidedBy: string;
  invalid?: InvalidAnnotation;
}

export function annotationKeysFor(containerName: string, domain: string = annotationDomain): string[] {
  return [`${domain}/container.${containerName}`, `${domain}/pod`, domain];
}

/** The most specific annotation of `domain` read by `parse` (which throws on a bad value), else `fallback`. */
export function chooseByAnnotation<T>(
  podAnnotations: Readonly<Record<string, string>> | undefined,
  containerName: string,
  domain: string,
  parse: (value: string) => T,
  fallback: T,
): AnnotationChoice<T> {
  for (const annotation of annotationKeysFor(containerName, domain)) {
    const value = podAnnotations?.[annotation];
    if (value === undefined) continue;
    try {
      return { value: parse(value), decidedBy: annotation };
    } catch (err) {
      return { value: fallback, decidedBy: "default", invalid: { annotation, value, reason: (err as Error).message } };
    }
  }
  return { value: fallback, decidedBy: "default" };
}

/** Whether the container gets views at all. */
export function decideViews(
  podAnnotations: Readonly<Record<string, string>> | undefined,
  containerName: string,
  defaultPolicy: DefaultPolicy,
): PolicyDecision {
  const choice = chooseByAnnotation(podAnnotations, containerName, annotationDomain, parseEnabled, defaultPolicy === "all");
  return { enabled: choice.value, decidedBy: choice.decidedBy, ...(choice.invalid && { invalid: choice.invalid }) };
}

/** The names of the views the container gets (see view-selection.ts). */
export function decideViewNames(
  podAnnotations: Readonly<Record<string, string>> | undefined,
  containerName: string,
  defaultViews: readonly string[],
): AnnotationChoice<readonly string[]> {
  return chooseByAnnotation(podAnnotations, containerName, viewsAnnotationDomain, parseViewList, defaultViews);
}

/** Whether the container's CPU views count ceil(quota/period) CPUs; undefined leaves it to the FUSE server's default. */
export function decideCpuByQuota(
  podAnnotations: Readonly<Record<string, string>> | undefined,
  containerName: string,
  defaultValue: boolean | undefined,
): AnnotationChoice<boolean | undefined> {
  return chooseByAnnotation<boolean | undefined>(podAnnotations, containerName, cpuByQuotaAnnotationDomain, parseBoolean, defaultValue);
}

function parseEnabled(value: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (normalized === "enabled") return true;
  if (normalized === "disabled") return false;
  throw new Error("expected enabled or disabled");
}

export function parseBoolean(value: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (normalized === "true") return true;
  if (normalized === "false") return false;
  throw new Error("expected true or false");
}

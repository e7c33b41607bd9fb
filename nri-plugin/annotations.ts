/**
 * Per-container choices through annotations, following the NRI sample plugins'
 * convention: the most specific key wins. In order:
 *
 *   the container's own annotation  <key>                    (OCI annotations: ctr/nerdctl/docker --annotation, CRI container config)
 *   the pod's annotation            <key>/container.<name>
 *                                   <key>/pod                (every container of the pod)
 *                                   <key>
 *
 * for the keys
 *
 *   procview.noderesource.dev:              enabled | disabled
 *   views.procview.noderesource.dev:        meminfo,cpuinfo,… | all
 *   cpu-by-quota.procview.noderesource.dev: true | false
 *
 * A value that cannot be read falls back to the default (not to a less specific key: a
 * typo must not silently hand the decision to a broader annotation) and is reported for
 * the caller to log.
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

/** Where a container's annotations come from; either may be missing (no pod sandbox, no own annotations). */
export interface AnnotationSources {
  pod?: Readonly<Record<string, string>>;
  container?: Readonly<Record<string, string>>;
  containerName: string;
}

/** The annotations that may decide `domain`, most specific first, with what decidedBy calls them. */
function candidates(sources: AnnotationSources, domain: string): Array<{ annotations?: Readonly<Record<string, string>>; key: string; name: string }> {
  return [
    { annotations: sources.container, key: domain, name: `container annotation ${domain}` },
    ...annotationKeysFor(sources.containerName, domain).map((key) => ({ annotations: sources.pod, key, name: key })),
  ];
}

/** The most specific annotation of `domain` read by `parse` (which throws on a bad value), else `fallback`. */
export function chooseByAnnotation<T>(
  sources: AnnotationSources,
  domain: string,
  parse: (value: string) => T,
  fallback: T,
): AnnotationChoice<T> {
  for (const { annotations, key, name } of candidates(sources, domain)) {
    const value = annotations?.[key];
    if (value === undefined) continue;
    try {
      return { value: parse(value), decidedBy: name };
    } catch (err) {
      return { value: fallback, decidedBy: "default", invalid: { annotation: name, value, reason: (err as Error).message } };
    }
  }
  return { value: fallback, decidedBy: "default" };
}

/** Whether the container gets views at all. */
export function decideViews(sources: AnnotationSources, defaultPolicy: DefaultPolicy): PolicyDecision {
  const choice = chooseByAnnotation(sources, annotationDomain, parseEnabled, defaultPolicy === "all");
  return { enabled: choice.value, decidedBy: choice.decidedBy, ...(choice.invalid && { invalid: choice.invalid }) };
}

/** The names of the views the container gets (see view-selection.ts). */
export function decideViewNames(sources: AnnotationSources, defaultViews: readonly string[]): AnnotationChoice<readonly string[]> {
  return chooseByAnnotation(sources, viewsAnnotationDomain, parseViewList, defaultViews);
}

/** Whether the container's CPU views count ceil(quota/period) CPUs; undefined leaves it to the FUSE server's default. */
export function decideCpuByQuota(sources: AnnotationSources, defaultValue: boolean | undefined): AnnotationChoice<boolean | undefined> {
  return chooseByAnnotation<boolean | undefined>(sources, cpuByQuotaAnnotationDomain, parseBoolean, defaultValue);
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

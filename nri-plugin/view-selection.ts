/**
 * Names for the view files (core/views.ts), so that annotations and configuration can
 * choose a subset: "meminfo", "cpuinfo", …, "cpu/online". A name is the bind target
 * without its /proc/ or /sys/devices/system/ prefix: short, and unambiguous because
 * the targets are.
 */

import { viewFiles, type ViewFile } from "../core/views.ts";

const targetPrefixes = ["/proc/", "/sys/devices/system/"];

export function viewNameOf(view: ViewFile): string {
  const prefix = targetPrefixes.find((candidate) => view.target.startsWith(candidate));
  return prefix === undefined ? view.target : view.target.slice(prefix.length);
}

/** Every view's name, in core/views.ts order. */
export const viewNames: readonly string[] = viewFiles.map(viewNameOf);

/** The keyword that selects every view, now and as views are added. */
export const allViews = "all";

/**
 * The view names in a list such as "meminfo, cpuinfo" or ["meminfo", "cpuinfo"], or
 * "all". Throws, naming the offender, on an unknown or empty list: a typo must not
 * quietly leave a container with fewer views than meant.
 */
export function parseViewList(list: string | readonly string[]): readonly string[] {
  const names = (typeof list === "string" ? list.split(",") : list).map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
  if (names.length === 0) throw new Error(`an empty view list; name views (${viewNames.join(", ")}) or "${allViews}"`);
  if (names.includes(allViews)) {
    if (names.length > 1) throw new Error(`"${allViews}" cannot be combined with other view names`);
    return viewNames;
  }
  for (const name of names) {
    if (!viewNames.includes(name)) throw new Error(`unknown view "${name}"; known views: ${viewNames.join(", ")}`);
  }
  // Bind in the catalogue's order whatever order the list used, without duplicates.
  return viewNames.filter((name) => names.includes(name));
}

/** The view files of the named views. */
export function viewFilesNamed(names: readonly string[]): readonly ViewFile[] {
  return viewFiles.filter((view) => names.includes(viewNameOf(view)));
}

/**
 * Where the cgroup hierarchies are mounted, and so where a controller's files for a cgroup
 * path are: what the views read their limits and usage from.
 */

import { posix } from "node:path";
import { parseMountinfo } from "../../core/mountinfo.ts";

/** The cgroup mounts of a host: v1 controller hierarchies and the cgroup2 (unified) mount. */
export interface CgroupLayout {
  /** v1 controller name (memory, cpuset, cpuacct, …) → its mount point. */
  v1: Map<string, string>;
  /** The cgroup2 mount point, if any (hybrid hosts mount it at /sys/fs/cgroup/unified). */
  unified?: string;
}

/** Reads the layout from /proc/self/mountinfo text. */
export function parseCgroupLayout(mountinfo: string): CgroupLayout {
  const layout: CgroupLayout = { v1: new Map() };
  for (const { mountPoint, fsType, superOptions } of parseMountinfo(mountinfo)) {
    if (fsType === "cgroup2") {
      layout.unified ??= mountPoint;
    } else if (fsType === "cgroup") {
      for (const option of superOptions.split(",")) {
        if (option === "rw" || option === "ro" || option.includes("=")) continue;
        if (!layout.v1.has(option)) layout.v1.set(option, mountPoint);
      }
    }
  }
  return layout;
}

export interface ControllerLocation {
  version: 1 | 2;
  /** Absolute directory of the cgroup for that controller. */
  dir: string;
}

/**
 * The directory holding `controller`'s files for the cgroup at `relativePath`: the v1
 * hierarchy when the controller is mounted there, else the unified hierarchy.
 */
export function locateController(
  layout: CgroupLayout,
  controller: string,
  relativePath: string,
): ControllerLocation | undefined {
  const v1 = layout.v1.get(controller);
  if (v1 !== undefined) return { version: 1, dir: posix.join(v1, relativePath) };
  if (layout.unified !== undefined) return { version: 2, dir: posix.join(layout.unified, relativePath) };
  return undefined;
}

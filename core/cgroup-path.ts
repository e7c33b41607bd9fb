/**
 * Where a container's cgroup lives. Both sides need it: the NRI plugin turns the
 * runtime's cgroups_path into a path it records, the FUSE side finds controller files.
 */

import { posix } from "node:path";
import { parseMountinfo } from "./mountinfo.ts";

/**
 * The runtime's `cgroups_path` as a path relative to a hierarchy root ("/a/b").
 *
 * Accepts the cgroupfs form (`/k8s.io/<id>`, `kubepods/burstable/pod…/<id>`) and the
 * systemd-driver form `<slice>:<prefix>:<name>` that kubelet and containerd use on
 * systemd hosts (`kubepods-burstable-pod1.slice:cri-containerd:<id>` lives at
 * `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-<id>.scope`).
 */
export function cgroupRelativePath(cgroupsPath: string): string {
  if (cgroupsPath.includes("\0")) throw new Error(`cgroups path contains NUL: ${JSON.stringify(cgroupsPath)}`);
  const systemd = /^([^/:]*):([^/:]*):([^/:]+)$/.exec(cgroupsPath);
  if (systemd) {
    const [, slice, prefix, name] = systemd;
    const unit = name.endsWith(".slice") ? name : prefix ? `${prefix}-${name}.scope` : `${name}.scope`;
    return posix.join(expandSystemdSlice(slice), name.endsWith(".slice") ? expandSystemdSlice(name) : unit);
  }
  if (cgroupsPath.split("/").includes("..")) {
    throw new Error(`cgroups path escapes its hierarchy: ${JSON.stringify(cgroupsPath)}`);
  }
  return posix.normalize("/" + cgroupsPath).replace(/\/+$/, "") || "/";
}

/**
 * systemd nests a slice under every dash-separated prefix of its name:
 * `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` and "" are the root.
 */
export function expandSystemdSlice(slice: string): string {
  if (slice === "" || slice === "-.slice") return "/";
  if (!slice.endsWith(".slice") || slice.includes("/")) {
    throw new Error(`not a systemd slice name: ${JSON.stringify(slice)}`);
  }
  const base = slice.slice(0, -".slice".length);
  if (base.startsWith("-") || base.endsWith("-") || base.includes("--")) {
    throw new Error(`malformed systemd slice name: ${JSON.stringify(slice)}`);
  }
  const parts = base.split("-");
  let path = "";
  for (let i = 1; i <= parts.length; i++) path += "/" + parts.slice(0, i).join("-") + ".slice";
  return path;
}

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

/** `/proc/<pid>/cgroup` lines → controller → path; the v2 entry has key "". */
export function parseProcCgroup(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, controllers, path] = match;
    if (controllers === "") paths.set("", path);
    for (const controller of controllers.split(",")) {
      if (controller !== "") paths.set(controller, path);
    }
  }
  return paths;
}

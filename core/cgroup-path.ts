/**
 * Where a container's cgroup lives, relative to a hierarchy root. Both sides need it: the
 * NRI plugin turns the runtime's cgroups_path into a path it records, the FUSE side (and
 * crash recovery) reads a process's paths from /proc/<pid>/cgroup. Where the hierarchies
 * are mounted is the views' business (views/cgroup/layout.ts).
 */

import { posix } from "node:path";

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

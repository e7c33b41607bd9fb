/**
 * The files procview serves for each container, and where they are bound inside it.
 * This list is the contract between the two processes: the NRI plugin binds every entry
 * it holds, so the FUSE tree must serve every entry (a bind of a missing source fails
 * the container in runc).
 */

export interface ViewFile {
  /** Path below a container's directory in the FUSE tree (`containers/<id>/<path>`) and below the LXCFS-compatible root. */
  path: string;
  /** Where it is bound inside the container. */
  target: string;
}

export const viewFiles: readonly ViewFile[] = [
  { path: "proc/meminfo", target: "/proc/meminfo" },
  { path: "proc/cpuinfo", target: "/proc/cpuinfo" },
  { path: "proc/stat", target: "/proc/stat" },
  { path: "proc/uptime", target: "/proc/uptime" },
  { path: "proc/diskstats", target: "/proc/diskstats" },
  { path: "proc/swaps", target: "/proc/swaps" },
  { path: "proc/loadavg", target: "/proc/loadavg" },
  { path: "sys/devices/system/cpu/online", target: "/sys/devices/system/cpu/online" },
];

/** Source of a view's bind for the NRI layout. */
export function containerViewSource(mountpoint: string, containerId: string, view: ViewFile): string {
  return `${mountpoint.replace(/\/+$/, "")}/containers/${containerId}/${view.path}`;
}

/** A bind as both the OCI runtime spec (config.json `mounts`) and NRI's Mount spell it. */
export interface ViewMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** The read-only binds of the view files (all by default), sourced from the container's directory in the FUSE tree. */
export function viewMounts(mountpoint: string, containerId: string, views: readonly ViewFile[] = viewFiles): ViewMount[] {
  return views.map((view) => ({
    destination: view.target,
    type: "bind",
    source: containerViewSource(mountpoint, containerId, view),
    // "ro" alone fails in runc, "bind" alone lets the container write through to the host.
    options: ["bind", "ro"],
  }));
}

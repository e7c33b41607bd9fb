/**
 * Every view the FUSE tree can serve, by its path below a container's directory. The
 * tree serves exactly these; core/views.ts lists which of them the NRI plugin binds.
 */

import { posix } from "node:path";
import type { CgroupLayout } from "../../core/cgroup-path.ts";
import { readMemorySnapshot } from "../cgroup/memory.ts";
import { readHostMeminfo } from "../host/meminfo.ts";
import { renderMeminfo } from "./meminfo.ts";

/** What a renderer may read besides the cgroup: host-wide inputs, fixed for the daemon's life. */
export interface ViewSources {
  layout: CgroupLayout;
  /** The host's procfs ("/proc"); tests point it at fixtures. */
  procDir: string;
}

/** Builds a view's content for the cgroup at `cgroupPath` (relative to a hierarchy root). */
export type ViewRenderer = (cgroupPath: string, sources: ViewSources) => string;

export const viewRenderers: ReadonlyMap<string, ViewRenderer> = new Map<string, ViewRenderer>([
  ["proc/meminfo", (cgroupPath, sources) =>
    renderMeminfo(readMemorySnapshot(sources.layout, cgroupPath), readHostMeminfo(posix.join(sources.procDir, "meminfo")))],
]);

/**
 * What procview's tree can serve when callers are anonymous (fuse-native gives no pid):
 * only `containers/<id>/…`, whose content comes from the container's recorded cgroup.
 * The LXCFS-compatible root views render the reading process's cgroup, so without a
 * pid they could only fail or, worse, show someone else's numbers: they are left out.
 */

import type { DirNode } from "../node.ts";

export const callerFreeEntries: readonly string[] = ["containers"];

export function callerFreeTree(root: DirNode): DirNode {
  return {
    kind: "dir",
    lookup: (name, ctx) => (callerFreeEntries.includes(name) ? root.lookup(name, ctx) : undefined),
    list: (ctx) => root.list(ctx).filter((name) => callerFreeEntries.includes(name)),
  };
}

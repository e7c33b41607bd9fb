/**
 * The plugin's part of crash recovery: at Synchronize, the runtime lists the containers
 * that already run. Those created while the plugin (or the FUSE server) was down started
 * without views, and a bind may still point at a dead mount: give each the views it
 * should have, in place (core/heal.ts ensureViewBinds), without restarting it.
 */

import { readFileSync } from "node:fs";
import { ensureViewBinds, procviewDeviceAt, processInCgroup } from "../core/heal.ts";
import type { Logger } from "../core/log.ts";

export interface RunningContainerViews {
  containerId: string;
  /** The container's init pid as the runtime reports it (0 or absent: found from its cgroup). */
  pid?: number;
  cgroupPath: string;
  binds: { source: string; target: string }[];
}

/** Binds the views each container lacks; logs what it did and, with the container id, what it could not. */
export async function healRunningContainers(containers: RunningContainerViews[], mountpoint: string, logger: Logger, procDir = "/proc"): Promise<void> {
  if (containers.length === 0) return;
  const missing = missingCapabilities(readFileSync(`${procDir}/self/status`, "utf8"));
  if (missing.length > 0) {
    logger.warn("cannot heal running containers: entering their mount namespaces needs capabilities this process lacks; they get views when restarted", {
      missing,
      containers: containers.map((container) => container.containerId),
    });
    return;
  }
  const device = procviewDeviceAt(readFileSync(`${procDir}/self/mountinfo`, "utf8"), mountpoint);
  if (device === undefined) {
    logger.warn("cannot heal running containers: no procview mount here", { mountpoint, containers: containers.length });
    return;
  }
  for (const container of containers) {
    const fields = { containerId: container.containerId };
    const pid = container.pid ? container.pid : processInCgroup(container.cgroupPath, procDir);
    if (pid === undefined) {
      logger.warn("cannot heal container: no process left in its cgroup (stopped or exited)", { ...fields, cgroupPath: container.cgroupPath });
      continue;
    }
    const outcome = await ensureViewBinds(pid, container.binds, device, { procDir });
    if (!outcome.ok) {
      logger.warn("cannot heal container", { ...fields, pid, reason: outcome.error, code: outcome.code });
      continue;
    }
    const bound = outcome.binds.filter((bind) => bind.ok);
    for (const failed of outcome.binds) {
      if (!failed.ok) logger.warn("cannot heal a procview view in a container", { ...fields, pid, target: failed.target, reason: failed.error, code: failed.code });
    }
    if (bound.length > 0) logger.info("bound procview views into a running container", { ...fields, pid, targets: bound.map((bind) => bind.target) });
    else if (outcome.binds.length === 0) logger.debug("running container has live procview views", fields);
  }
}

/** setns into another mount namespace needs CAP_SYS_ADMIN and CAP_SYS_CHROOT; reading its ns link, CAP_SYS_PTRACE. */
const neededCapabilities: [string, number][] = [
  ["CAP_SYS_CHROOT", 18],
  ["CAP_SYS_PTRACE", 19],
  ["CAP_SYS_ADMIN", 21],
];

/** The needed capabilities missing from the effective set in a /proc/<pid>/status text. */
export function missingCapabilities(status: string): string[] {
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  const bits = effective ? BigInt(`0x${effective[1]}`) : 0n;
  return neededCapabilities.filter(([, bit]) => (bits & (1n << BigInt(bit))) === 0n).map(([name]) => name);
}

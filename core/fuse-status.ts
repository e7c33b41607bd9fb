/**
 * Whether the FUSE server is serving, as the NRI plugin must know before it injects
 * binds (a bind of a dead FUSE mount reads "Transport endpoint is not connected").
 *
 * The check never touches the mount itself: a stat of a hung FUSE mount blocks, and
 * CreateContainer must not wait on the FUSE process. Instead the server leaves a status
 * file naming its pid and mountpoint, and the kernel's mount table says whether a
 * procview FUSE mount is at that mountpoint.
 */

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mountPointsOfType } from "./mountinfo.ts";

export const fuseFsType = "fuse.procview";

export interface FuseStatus {
  pid: number;
  mountpoint: string;
  startedAt: number;
}

export type Liveness = { live: true; status: FuseStatus } | { live: false; reason: string };

function statusFile(stateDir: string): string {
  return join(stateDir, "fuse.json");
}

export function writeFuseStatus(stateDir: string, status: FuseStatus): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const file = statusFile(stateDir);
  writeFileSync(`${file}.tmp`, JSON.stringify(status) + "\n");
  renameSync(`${file}.tmp`, file);
}

/** Removes the status file if it is still ours (a successor may have replaced it). */
export function clearFuseStatus(stateDir: string, pid: number): void {
  const current = readFuseStatus(stateDir);
  if (current?.pid === pid) rmSync(statusFile(stateDir), { force: true });
}

export function readFuseStatus(stateDir: string): FuseStatus | undefined {
  try {
    const value = JSON.parse(readFileSync(statusFile(stateDir), "utf8")) as FuseStatus;
    return Number.isInteger(value.pid) && typeof value.mountpoint === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Mount points of procview FUSE mounts in a mountinfo text. */
export function procviewMountpoints(mountinfo: string): string[] {
  return mountPointsOfType(mountinfo, fuseFsType);
}

export interface LivenessProbe {
  readStatus: () => FuseStatus | undefined;
  isAlive: (pid: number) => boolean;
  mountinfo: () => string;
}

export function checkFuseLiveness(mountpoint: string, probe: LivenessProbe): Liveness {
  const status = probe.readStatus();
  if (!status) return { live: false, reason: "no FUSE server status file" };
  if (status.mountpoint !== mountpoint) {
    return { live: false, reason: `FUSE server serves ${status.mountpoint}, not ${mountpoint}` };
  }
  if (!probe.isAlive(status.pid)) return { live: false, reason: `FUSE server pid ${status.pid} is gone` };
  if (!procviewMountpoints(probe.mountinfo()).includes(mountpoint)) {
    return { live: false, reason: `no ${fuseFsType} mount at ${mountpoint}` };
  }
  return { live: true, status };
}

export function hostLivenessProbe(stateDir: string): LivenessProbe {
  return {
    readStatus: () => readFuseStatus(stateDir),
    isAlive: (pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === "EPERM";
      }
    },
    mountinfo: () => readFileSync("/proc/self/mountinfo", "utf8"),
  };
}

/**
 * The serving process's pid alone, for supervisors: systemd's PIDFile= follows a
 * `procview fuse --replace` successor as the service's main process when the replaced
 * one exits, because the successor writes this file before that.
 */
export function fusePidFile(stateDir: string): string {
  return join(stateDir, "fuse.pid");
}

export function writeFusePidFile(stateDir: string, pid: number): void {
  const file = fusePidFile(stateDir);
  writeFileSync(`${file}.tmp`, `${pid}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Removes the pid file if it still names `pid`. */
export function clearFusePidFile(stateDir: string, pid: number): void {
  try {
    if (Number(readFileSync(fusePidFile(stateDir), "utf8").trim()) === pid) rmSync(fusePidFile(stateDir), { force: true });
  } catch {
    // No pid file: nothing to clear.
  }
}

/**
 * Mounting a /dev/fuse fd with util-linux mount(8): no FFI and no fusermount needed
 * when running as root. The fd reaches mount(8) as its fd 3 (`-o fd=3`); `-i` keeps
 * mount from looking for a /sbin/mount.fuse.procview helper.
 */

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, openSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Logger } from "../../core/log.ts";
import { fuseFsType, procviewMountpoints } from "../../core/fuse-status.ts";

/** Opens /dev/fuse for reading and writing (another path only in tests). */
export function openFuseDevice(fuseDevice = "/dev/fuse"): number {
  try {
    return openSync(fuseDevice, "r+");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error(`${fuseDevice} does not exist: load the fuse kernel module (modprobe fuse) or pass the device into this container`);
    if (code === "EACCES" || code === "EPERM") throw new Error(`cannot open ${fuseDevice} (${code}): the FUSE server must run as root`);
    throw new Error(`cannot open ${fuseDevice}: ${(err as Error).message}`);
  }
}

/**
 * Mount options: read-only, everyone may read (container root is another uid), nothing
 * executable; default_permissions makes the kernel enforce the tree's modes (a directory
 * that only root may list).
 */
export function mountOptions(): string {
  return ["fd=3", "rootmode=40000", "user_id=0", "group_id=0", "allow_other", "default_permissions", "ro", "nosuid", "nodev", "noexec", "noatime"].join(",");
}

export async function mountFuse(fd: number, mountpoint: string): Promise<void> {
  const fsName = fuseFsType.slice("fuse.".length);
  await run("mount", ["-i", "-t", fuseFsType, "-o", mountOptions(), fsName, mountpoint], fd);
}

/** Lazy unmount detaches at once even while files are open (they keep the connection until closed). */
export async function unmountFuse(mountpoint: string, options: { lazy?: boolean } = {}): Promise<void> {
  await run("umount", options.lazy ? ["-c", "-l", mountpoint] : ["-c", mountpoint]);
}

/** Unmounts if the mount is still ours; busy (a reader holds a file open), detaches it lazily. */
export async function unmountOrDetach(mountpoint: string, logger: Logger): Promise<void> {
  if (!isProcviewMount(mountpoint)) return;
  try {
    await unmountFuse(mountpoint);
  } catch (err) {
    // Open files then see the connection end when the server goes.
    logger.warn("unmount busy, detaching lazily", { mountpoint, err });
    await unmountFuse(mountpoint, { lazy: true });
  }
}

/** A lazy unmount that does not wait on the event loop, for a process that is exiting. */
export function detachFuseMountNow(mountpoint: string): void {
  spawnSync("umount", ["-c", "-l", mountpoint], { stdio: "ignore", timeout: 5000 });
}

export function isProcviewMount(mountpoint: string): boolean {
  return procviewMountpoints(readFileSync("/proc/self/mountinfo", "utf8")).includes(mountpoint);
}

/**
 * Makes `mountpoint` ready to mount on and returns its canonical path (as mountinfo
 * shows it). A procview mount left behind by a dead server ("Transport endpoint is not
 * connected") is lazily unmounted first; a live one is an error, not something to stack on.
 */
export async function prepareMountpoint(mountpoint: string, logger: Logger): Promise<string> {
  const absolute = resolve(mountpoint);
  try {
    mkdirSync(absolute, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOTCONN" && code !== "EEXIST") throw new Error(`cannot create mountpoint ${absolute}: ${(err as Error).message}`);
  }
  // The mountpoint itself may be a dead mount that stat cannot enter; its parent can be resolved.
  const canonical = join(realpathSync(dirname(absolute)), basename(absolute));
  let stat;
  try {
    stat = statSync(canonical);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOTCONN") throw new Error(`mountpoint ${canonical} is unusable: ${(err as Error).message}`);
    if (!isProcviewMount(canonical)) throw new Error(`mountpoint ${canonical} is a dead mount of another FUSE filesystem`);
    logger.warn("removing the stale procview mount of a dead FUSE server", { mountpoint: canonical });
    await unmountFuse(canonical, { lazy: true });
    stat = statSync(canonical);
  }
  if (!stat.isDirectory()) throw new Error(`mountpoint ${canonical} is not a directory`);
  if (isProcviewMount(canonical)) throw new Error(`mountpoint ${canonical} is already served by a live procview FUSE server`);
  return canonical;
}

function run(command: string, args: string[], fuseFd?: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "ignore", "pipe"];
    if (fuseFd !== undefined) stdio.push(fuseFd);
    const child = spawn(command, args, { stdio });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.on("close", (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${command} ${args.join(" ")} failed (exit ${code}): ${stderr.trim()}`));
    });
  });
}

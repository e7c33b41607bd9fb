/**
 * The FUSE server on fuse-native (`--backend fuse-native`, Node only): the same tree
 * module, mountpoint handling and server lifecycle as fuse/daemon.ts, served on the main
 * thread by libfuse 2.9. fuse-native hides the caller, so only the caller-free part of
 * the tree is served (caller-free-tree.ts).
 *
 * Mount options: `direct_io` because files report size 0 (content is built at open),
 * `ro` so the kernel refuses every write with EROFS, `default_permissions` so the kernel
 * enforces the tree's modes (fuse-native cannot tell who calls), and fsname/subtype so mountinfo
 * says `fuse.procview`, which the NRI plugin's liveness check (core/fuse-status.ts) looks for.
 *
 * Every operation is answered on the main thread: nothing on it may touch the mount
 * synchronously (a sync read would wait for the thread that is to answer it).
 */

import { fuseFsType } from "../../core/fuse-status.ts";
import { createLogger } from "../../core/log.ts";
import { announceServer, serveConnection, type FuseServer, type FuseServerOptions, type Serving } from "../daemon.ts";
import { isProcviewMount, prepareMountpoint, unmountOrDetach } from "../kernel/mount.ts";
import type { LoopEnd } from "../kernel/request-loop.ts";
import type { TreeModule } from "../node.ts";
import { callerFreeTree } from "./caller-free-tree.ts";
import { loadFuseNative, type NativeFuse } from "./load.ts";
import { treeOperations } from "./operations.ts";

export const nativeMountOptions: readonly string[] = ["direct_io", "default_permissions", "ro", "noexec", "noatime"];

/** How often the mount table is checked for an unmount from outside (fuse-native does not report it). */
const mountCheckIntervalMs = 1000;

/**
 * Starts serving; `workers` is ignored (libfuse's threads hand every operation to the main
 * thread). The lifecycle around the mount is fuse/daemon.ts's, less the handover: libfuse
 * owns the /dev/fuse fd, so this backend neither hands its connection over nor takes one.
 */
export async function startNativeFuseServer(o: FuseServerOptions): Promise<FuseServer> {
  const logger = o.logger ?? createLogger({ fields: { component: "fuse" } });
  const fuseNative = loadFuseNative();
  const treeModule = (await import(o.treeModule)) as TreeModule;
  const root = callerFreeTree(await treeModule.createTree(o.treeOptions));
  const mountpoint = await prepareMountpoint(o.mountpoint, logger);

  const name = fuseFsType.slice("fuse.".length);
  const operations = treeOperations(root, { logger, time: new Date() });
  const fuse = fuseNative.createFuse(mountpoint, operations, { allowOther: true, fsname: name, subtype: name }, nativeMountOptions);
  await mount(fuse, mountpoint);

  // libfuse answers until the mount goes; only the mount table tells when that was from outside.
  let announceUnmounted: (end: LoopEnd) => void = () => {};
  const finished = new Promise<LoopEnd>((resolve) => (announceUnmounted = resolve));
  const mountCheck = setInterval(() => {
    if (!isProcviewMount(mountpoint)) announceUnmounted("unmounted");
  }, mountCheckIntervalMs);
  mountCheck.unref();
  const serving: Serving = { stop: async () => {}, stopBlocking: () => {}, finished };
  const close = (): void => {
    clearInterval(mountCheck);
    fuseNative.releaseEventLoop(mountpoint, fuse);
  };

  try {
    announceServer(o.stateDir, mountpoint);
  } catch (err) {
    await unmountOrDetach(mountpoint, logger);
    close();
    throw new Error(`cannot write the FUSE status file in ${o.stateDir}: ${(err as Error).message}`);
  }
  return serveConnection(o.stateDir, logger, { mountpoint, serving, close }, {
    backend: "fuse-native",
    servedLayout: "containers/<id>/… only: fuse-native does not tell who reads",
  });
}

function mount(fuse: NativeFuse, mountpoint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fuse.mount((err) => (err ? reject(new Error(`fuse-native cannot mount ${mountpoint}: ${err.message}`)) : resolve()));
  });
}

/**
 * What a FUSE server and its successor say on the handover channel, in order:
 *
 *   successor → server   hello  {version, pid, mountpoint}
 *   server → successor   offer  {pid, fd, sizes}     still serving; the successor copies fd
 *                                                     (pidfd_getfd) and readies its workers
 *   successor → server   stop
 *   server → successor   state  {layout} + bytes      stopped between requests
 *   successor → server   commit                      the successor serves from here on
 *
 * Until `commit` the server can resume on its own fd and state: a successor that fails
 * or goes away before it leaves the server serving. After `commit` the server closes
 * its fd and exits without unmounting. Either side may send {type: "error", reason}.
 */

import { join } from "node:path";
import type { ByteRange } from "../kernel/node-table.ts";
import type { StateLayout, StateSizes } from "./state.ts";

/** Bumped whenever a message or the tables' layout changes: mismatched versions never hand over. */
export const handoverVersion = 3;

export function handoverSocketPath(stateDir: string): string {
  return join(stateDir, "fuse-handover.sock");
}

export interface Hello {
  version: number;
  pid: number;
  mountpoint: string;
}

export interface Offer {
  pid: number;
  fd: number;
  sizes: StateSizes;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function field(message: Record<string, unknown>, key: string): unknown {
  return message[key];
}

export function parseHello(message: Record<string, unknown>): Hello {
  const version = field(message, "version");
  const pid = field(message, "pid");
  const mountpoint = field(message, "mountpoint");
  if (!isCount(version) || !isCount(pid) || pid === 0 || typeof mountpoint !== "string") throw new Error("malformed hello");
  return { version, pid, mountpoint };
}

export function parseOffer(message: Record<string, unknown>): Offer {
  const pid = field(message, "pid");
  const fd = field(message, "fd");
  const sizes = field(message, "sizes") as Record<string, unknown> | undefined;
  if (!isCount(pid) || pid === 0 || !isCount(fd) || !isCount(sizes?.nodes) || !isCount(sizes?.handles)) throw new Error("malformed offer");
  if (sizes.treeState !== undefined && !isCount(sizes.treeState)) throw new Error("malformed offer");
  const counted: StateSizes = { nodes: sizes.nodes as number, handles: sizes.handles as number };
  if (sizes.treeState !== undefined) counted.treeState = sizes.treeState;
  return { pid, fd, sizes: counted };
}

export function parseLayout(message: Record<string, unknown>): StateLayout {
  const layout = field(message, "layout") as Record<string, unknown> | undefined;
  const ranges = (value: unknown): ByteRange[] => {
    if (!Array.isArray(value) || !value.every((range) => Array.isArray(range) && range.length === 2 && range.every(isCount))) {
      throw new Error("malformed state layout");
    }
    return value as ByteRange[];
  };
  return { nodes: ranges(layout?.nodes), handles: ranges(layout?.handles), treeState: ranges(layout?.treeState ?? []) };
}

/**
 * Expires the kernel's entries for names that left an audited directory (a removed
 * container's folder), so that those entries can be kept for a minute rather than half a
 * second. With half a second, a host-side reader going over many containers had each one's
 * folder looked up again at almost every read. Runs on the server's main thread: every
 * `intervalMs` it compares the names the kernel holds there (the shared node table) with
 * the names the directory has, and sends one FUSE_NOTIFY_INVAL_ENTRY per name gone, on
 * the thread pool. The kernel takes the directory's lock for that, and a lookup in flight
 * there holds it until a serving thread answers. A successor does the same from its first
 * round, so a name that went during a handover goes too.
 */

import type { Logger } from "../../core/log.ts";
import type { AuditedDirectory, TreeModule } from "../node.ts";
import type { WriteOffThread } from "./deferred-writes.ts";
import type { NodeTable } from "./node-table.ts";
import { encodeNotifyInvalEntry, rootNodeId } from "./protocol.ts";

/** A removed container's folder stays reachable from the host for at most about this long, as with the half-second entries before. */
export const auditIntervalMs = 250;

export interface EntryAuditOptions {
  fd: number;
  nodes: NodeTable;
  directories: readonly AuditedDirectory[];
  write: WriteOffThread;
  logger: Logger;
  intervalMs?: number;
}

export interface EntryAudit {
  /** One round now: resolves once its notifications are written. */
  round(): Promise<void>;
  /**
   * No more rounds; resolves once the current one's notifications are written. Await it
   * while the serving threads still answer: a notification waits for the directory's lock,
   * which a lookup in flight holds until it is answered, and a process whose pool thread
   * still waits in a write cannot exit.
   */
  stop(): Promise<void>;
}

/** The audited directories of the tree module, none if it declares none. */
export async function auditedDirectoriesOf(treeModule: string, treeOptions: unknown): Promise<AuditedDirectory[]> {
  const module = (await import(treeModule)) as Partial<TreeModule>;
  return module.auditedDirectories?.(treeOptions) ?? [];
}

export function startEntryAudit(options: EntryAuditOptions): EntryAudit {
  const { fd, nodes, directories, write, logger } = options;
  /** `nodeId:generation` of the entries expired already, so a name the kernel still holds (an open file below it) is expired once. */
  let expired = new Set<string>();
  let running: Promise<void> | undefined;
  let stopped = false;

  const directoryId = (path: readonly string[]): number | undefined => {
    let id = rootNodeId;
    for (const name of path) {
      const child = nodes.find(id, name);
      if (child === undefined) return undefined;
      id = child.nodeId;
    }
    return id;
  };

  const audit = async (): Promise<void> => {
    const stillExpired = new Set<string>();
    for (const directory of directories) {
      const parentId = directoryId(directory.path);
      if (parentId === undefined) continue;
      const held = nodes.children(parentId);
      if (held.length === 0) continue;
      let names: ReadonlySet<string>;
      try {
        names = directory.names();
      } catch (err) {
        logger.warn("cannot list an audited directory: its gone names stay reachable until the next round", { path: directory.path.join("/"), err });
        continue;
      }
      for (const child of held) {
        if (names.has(child.name)) continue;
        const key = `${child.nodeId}:${child.generation}`;
        stillExpired.add(key);
        if (expired.has(key)) continue;
        // false: the kernel no longer has the entry (or the connection ended): nothing to expire.
        if (!(await write(fd, encodeNotifyInvalEntry(parentId, child.name)))) logger.debug("entry to expire not in the kernel", { name: child.name });
      }
    }
    expired = stillExpired;
  };

  const round = (): Promise<void> => {
    if (stopped) return running ?? Promise.resolve();
    running ??= audit()
      .catch((err) => logger.error("entry audit failed", { err }))
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const timer = setInterval(() => void round(), options.intervalMs ?? auditIntervalMs);
  timer.unref();
  void round();
  return {
    round,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

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
  /**
   * Per directory: its version when a round last went through it (none yet in a successor),
   * and the `nodeId:generation` of the entries expired already, so that a name the kernel
   * still holds (something open below it) is expired once.
   */
  const states = new Map<AuditedDirectory, { version?: string; expired: Set<string> }>(directories.map((directory) => [directory, { expired: new Set() }]));
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

  const auditDirectory = async (directory: AuditedDirectory): Promise<void> => {
    const state = states.get(directory)!;
    // Read before the names: a change after it shows in the next round's version.
    const version = directory.version?.();
    if (version !== undefined && version === state.version) return;
    state.version = undefined;
    const parentId = directoryId(directory.path);
    const held = parentId === undefined ? [] : nodes.children(parentId);
    let names: ReadonlySet<string> = new Set();
    if (held.length > 0) {
      try {
        names = directory.names();
      } catch (err) {
        logger.warn("cannot list an audited directory: its gone names stay reachable until it can", { path: directory.path.join("/"), err });
        return;
      }
    }
    const expired = new Set<string>();
    for (const child of held) {
      if (names.has(child.name)) continue;
      const key = `${child.nodeId}:${child.generation}`;
      expired.add(key);
      if (state.expired.has(key)) continue;
      // false: the kernel no longer has the entry (or the connection ended): nothing to expire.
      if (!(await write(fd, encodeNotifyInvalEntry(parentId!, child.name)))) logger.debug("entry to expire not in the kernel", { name: child.name });
    }
    state.expired = expired;
    state.version = version;
  };

  const audit = async (): Promise<void> => {
    for (const directory of directories) await auditDirectory(directory);
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

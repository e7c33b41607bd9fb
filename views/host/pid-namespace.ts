/**
 * The init of a reader's pid namespace: a container's first process, the origin of its
 * uptime (as LXCFS counts it), whichever cgroups the container has or shares.
 */

import { readlinkSync } from "node:fs";
import { readOptionalFile } from "../../core/optional-file.ts";
import { parseTaskStatus, readProcessStat } from "./task.ts";

export interface NamespaceInit {
  /** Host pid of the namespace's pid 1. */
  pid: number;
  /** Its start, USER_HZ ticks since boot. */
  startTicks: number;
}

/** A shell pipeline is a few levels deep; a longer parent chain is not worth following at every open. */
const maxAncestors = 64;
/** Namespaces remembered per tree; the map is cleared when it fills (each entry is re-found in one walk). */
const maxRemembered = 1024;

export class PidNamespaces {
  private readonly procDir: string;
  private hostNamespace: string | undefined;
  /** Namespace link ("pid:[4026532481]") → its init, checked again before each use. */
  private readonly inits = new Map<string, NamespaceInit>();

  constructor(procDir: string) {
    this.procDir = procDir;
  }

  /**
   * The init of `pid`'s pid namespace; undefined when `pid` shares the host's namespace, is
   * gone, or its init is neither among its ancestors nor among `candidates` (pids that may
   * be the init: a process joined with setns, as `runc exec` does, has no ancestor inside).
   */
  initOf(pid: number, candidates: () => readonly number[]): NamespaceInit | undefined {
    const namespace = this.namespaceOf(pid);
    if (namespace === undefined || namespace === this.hostPidNamespace()) return undefined;
    const known = this.inits.get(namespace);
    // A pid is reused only after its process is gone, and its namespace with it: the same
    // pid with the same start in the same namespace is the same init.
    if (known !== undefined && this.namespaceOf(known.pid) === namespace && readProcessStat(this.procDir, known.pid)?.startTicks === known.startTicks) {
      return known;
    }
    const init = this.initAmongAncestors(pid, namespace) ?? this.initAmong(candidates(), namespace);
    if (init === undefined) return undefined;
    if (this.inits.size >= maxRemembered) this.inits.clear();
    this.inits.set(namespace, init);
    return init;
  }

  /** Up the parent chain while it stays in the namespace; the topmost is its init when it is pid 1 there. */
  private initAmongAncestors(pid: number, namespace: string): NamespaceInit | undefined {
    let current = pid;
    for (let depth = 0; depth < maxAncestors; depth++) {
      const stat = readProcessStat(this.procDir, current);
      if (stat === undefined) return undefined;
      const parent = stat.parentPid;
      if (parent <= 0 || this.namespaceOf(parent) !== namespace) {
        return this.isNamespaceInit(current) ? { pid: current, startTicks: stat.startTicks } : undefined;
      }
      current = parent;
    }
    return undefined;
  }

  private initAmong(pids: readonly number[], namespace: string): NamespaceInit | undefined {
    for (const pid of pids) {
      if (this.namespaceOf(pid) !== namespace || !this.isNamespaceInit(pid)) continue;
      const stat = readProcessStat(this.procDir, pid);
      if (stat !== undefined) return { pid, startTicks: stat.startTicks };
    }
    return undefined;
  }

  /** Whether the process is pid 1 of its own (innermost) namespace. */
  private isNamespaceInit(pid: number): boolean {
    const text = readOptionalFile(`${this.procDir}/${pid}/status`);
    return text !== undefined && parseTaskStatus(text)?.namespacePid === 1;
  }

  private hostPidNamespace(): string | undefined {
    // This server runs in the host's pid namespace (it must, to name its readers' pids).
    this.hostNamespace ??= this.namespaceOf("self");
    return this.hostNamespace;
  }

  private namespaceOf(pid: number | "self"): string | undefined {
    try {
      return readlinkSync(`${this.procDir}/${pid}/ns/pid`);
    } catch {
      // Gone, or not ours to see: either way no namespace to compare.
      return undefined;
    }
  }
}

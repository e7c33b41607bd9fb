/**
 * The channel from the NRI plugin to the FUSE server: one small JSON file per container
 * under `<stateDir>/containers/`, written atomically (temp file + rename).
 *
 * Why files on tmpfs rather than a socket between the two processes: either process can
 * restart without the other noticing (the records outlive both, the FUSE server reads
 * them on demand, the plugin rewrites them at its next Synchronize), and a record is in
 * place *before* the plugin answers CreateContainer, so runc finds the bind source when
 * it mounts it. Writing a few hundred bytes to tmpfs costs microseconds and never waits
 * on the FUSE process.
 */

import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import { cgroupRelativePath } from "./cgroup-path.ts";

export const defaultStateDir = "/run/procview";

export interface ContainerRecord {
  /** The runtime's container id. */
  id: string;
  /** The container's cgroup relative to a hierarchy root (see core/cgroup-path.ts). */
  cgroupPath: string;
  /** For logs and humans: the container and pod it belongs to. */
  name?: string;
  pod?: { name?: string; namespace?: string; uid?: string };
  /** Unix milliseconds when the plugin recorded it. */
  recordedAt: number;
  /**
   * Count CPUs by the quota (ceil(quota/period)) in this container's CPU views; absent:
   * the FUSE server's own --cpu-limit-by-quota decides. Set from pod annotations.
   */
  cpuLimitByQuota?: boolean;
}

/**
 * Container ids become path components of the FUSE tree and of record file names:
 * accept what runtimes generate (hex, or Docker-style names) and nothing that could
 * name another directory.
 */
export function isValidContainerId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id) && !id.includes("..");
}

/**
 * Creates the state dir (0700) and its records folder, and makes the records folder
 * private (0700) also when an older version left it world-readable: records name pods,
 * namespaces and cgroups. A state dir that already exists keeps its mode: it may be a
 * folder the operator shares with other things.
 */
export function makeRecordsPrivate(stateDir: string): void {
  const records = join(stateDir, "containers");
  mkdirSync(records, { recursive: true, mode: 0o700 });
  chmodSync(records, 0o700);
}

/** What identifies a container to the FUSE server, as either caller (NRI plugin, OCI runtime) knows it. */
export interface ContainerIdentity {
  id: string;
  /** The runtime's cgroups path: cgroupfs (`/a/b`) or systemd (`slice:prefix:name`) form. */
  cgroupsPath: string;
  name?: string;
  pod?: { name?: string; namespace?: string; uid?: string };
}

/** The record of a container. Throws on an id that cannot name a FUSE path or a cgroups path that cannot be read. */
export function containerRecord(container: ContainerIdentity, recordedAt: number, cpuLimitByQuota?: boolean): ContainerRecord {
  if (!isValidContainerId(container.id)) throw new Error(`invalid container id ${JSON.stringify(container.id)}`);
  return {
    id: container.id,
    cgroupPath: cgroupRelativePath(container.cgroupsPath),
    name: container.name,
    pod: container.pod ?? {},
    recordedAt,
    ...(cpuLimitByQuota !== undefined && { cpuLimitByQuota }),
  };
}

/** How long after a change the records folder's time is not trusted as its version. */
const settledAfterMs = 1000;

export class ContainerRegistry {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "containers");
  }

  /** Records (or replaces) a container. Throws on an invalid id or an unwritable state dir. */
  put(record: ContainerRecord): void {
    const file = this.fileOf(record.id);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(record) + "\n", { mode: 0o600 });
    renameSync(temp, file);
  }

  /** The record for `id`, or undefined when there is none or it is unreadable. */
  get(id: string): ContainerRecord | undefined {
    if (!isValidContainerId(id)) return undefined;
    let text: string;
    try {
      text = readFileSync(this.fileOf(id), "utf8");
    } catch {
      return undefined;
    }
    return parseRecord(text, id);
  }

  remove(id: string): void {
    if (!isValidContainerId(id)) return;
    rmSync(this.fileOf(id), { force: true });
  }

  /** Ids of every recorded container. */
  ids(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .filter((name) => name.endsWith(".json"))
      .map((name) => name.slice(0, -".json".length))
      .filter(isValidContainerId);
  }

  /**
   * Changes whenever a record is written or removed: the folder's identity and modification
   * time. undefined while there is no folder, and for a second after each change: the kernel
   * stamps file times from a clock that ticks every few ms, so a change right after this
   * was read could leave the same time.
   */
  version(): string | undefined {
    let folder: BigIntStats;
    try {
      folder = statSync(this.dir, { bigint: true });
    } catch {
      return undefined;
    }
    if (Date.now() - Number(folder.mtimeNs / 1_000_000n) < settledAfterMs) return undefined;
    return `${folder.ino}:${folder.mtimeNs}`;
  }

  private fileOf(id: string): string {
    if (!isValidContainerId(id)) throw new Error(`invalid container id: ${JSON.stringify(id)}`);
    return join(this.dir, `${id}.json`);
  }
}

function parseRecord(text: string, id: string): ContainerRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<ContainerRecord>;
    if (value.id !== id || typeof value.cgroupPath !== "string" || !value.cgroupPath.startsWith("/")) return undefined;
    if (value.cgroupPath.split("/").includes("..")) return undefined;
    return {
      id,
      cgroupPath: value.cgroupPath,
      name: value.name,
      pod: value.pod,
      recordedAt: typeof value.recordedAt === "number" ? value.recordedAt : 0,
      // A record written by an older plugin, or a value that is not a boolean, leaves the server's default.
      ...(typeof value.cpuLimitByQuota === "boolean" && { cpuLimitByQuota: value.cpuLimitByQuota }),
    };
  } catch {
    return undefined;
  }
}

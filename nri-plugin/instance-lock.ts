/**
 * One active NRI plugin per state dir. Two plugins that both bind /proc/meminfo make
 * containerd fail every container ("plugins … both tried to set mount"), and containerd
 * does not refuse a second registration under the same name, so the plugins settle it
 * among themselves, before registering.
 *
 * The lock is a unix socket bound at `<stateDir>/nri-plugin.lock`:
 * - taking it is atomic: the socket is bound at a private name, then hard-linked to the
 *   lock path (link() fails when the path exists); a socket reached through a link is
 *   the same socket;
 * - a holder that died leaves a socket nobody listens on: a refused connect proves it
 *   stale, and it is renamed away, checking by inode that the file moved is the one
 *   found refused (another starter may have taken the lock meanwhile);
 * - a connection to a live holder gets its identity as one JSON line, and may ask it to
 *   step down ("release"): how `--replace` takes over. Waiting instances keep a
 *   connection open, so they learn at once when the holder is gone.
 */

import { linkSync, renameSync, statSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { basename, dirname, join } from "node:path";

export const lockFileName = "nri-plugin.lock";

/** Who holds the lock, as it introduces itself to a connection. */
export interface LockHolder {
  pid: number;
  name: string;
  index: string;
  /** The NRI socket it serves, or "inherited" for a pre-launched plugin. */
  runtime: string;
}

export type LockLoss = "released" | "taken away";

export interface HeldLock {
  /** Settles when the lock is no longer ours: released to a replacement, or the lock file was removed or replaced. */
  readonly lost: Promise<LockLoss>;
  /** Gives the lock up (removes the lock file if it is still ours). Idempotent. */
  release(): Promise<void>;
}

export type Acquired = { held: HeldLock } | { heldBy: LockHolder | undefined };

export interface AcquireOptions {
  /** Called when a replacement asks us to step down; the lock is released once it settles. */
  onReleaseRequest: () => Promise<void>;
  /** How often the holder checks that the lock file is still its own (default 5 s). */
  checkIntervalMs?: number;
}

const helloTimeoutMs = 1000;
const maxAttempts = 5;
let uniqueCounter = 0;

const unique = (path: string, what: string) => join(dirname(path), `.${basename(path)}.${what}.${process.pid}.${++uniqueCounter}`);

function inodeOf(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** Takes the lock at `path`, or says who holds it (undefined: a holder that does not introduce itself, e.g. a stopped process). */
export async function acquireLock(path: string, identity: LockHolder, options: AcquireOptions): Promise<Acquired> {
  const privateName = unique(path, "bind");
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(privateName, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const inode = inodeOf(privateName);
  try {
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      try {
        linkSync(privateName, path);
        return { held: new Holder(path, inode!, server, identity, options) };
      } catch (err) {
        if (errnoOf(err) !== "EEXIST") throw err;
      }
      const found = inodeOf(path);
      const probe = await probeHolder(path);
      if (probe.state === "live") {
        await closeServer(server);
        return { heldBy: probe.holder };
      }
      if (probe.state === "stale" && found !== undefined) removeStaleLock(path, found);
    }
    await closeServer(server);
    throw new Error(`cannot take the plugin lock ${path}: it keeps changing (${maxAttempts} attempts)`);
  } finally {
    try {
      unlinkSync(privateName);
    } catch {
      // Already gone: closing the server removed it.
    }
  }
}

/** Moves a lock file nobody listens on out of the way, unless it is no longer the one found dead. */
function removeStaleLock(path: string, deadInode: number): void {
  const grave = unique(path, "stale");
  try {
    renameSync(path, grave);
  } catch {
    return; // Someone else removed it first.
  }
  if (inodeOf(grave) !== deadInode) {
    // Between the probe and the rename another starter took the lock: put it back.
    try {
      linkSync(grave, path);
    } catch {
      // A third starter holds the path now; the moved holder finds out at its next check.
    }
  }
  try {
    unlinkSync(grave);
  } catch {
    // Nothing left to clean.
  }
}

type Probe = { state: "live"; holder: LockHolder | undefined; socket: Socket } | { state: "stale" } | { state: "gone" };

/** Connects to the lock; a live holder's connection stays open in the result unless `keep` is false. */
function probeHolder(path: string, keep = false): Promise<Probe> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let settled = false;
    const settle = (probe: Probe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!keep || probe.state !== "live") socket.destroy();
      resolve(probe);
    };
    // Connected but silent: a holder that cannot answer (stopped) still holds the lock.
    const timer = setTimeout(() => settle({ state: "live", holder: undefined, socket }), helloTimeoutMs);
    let buffered = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      const end = buffered.indexOf("\n");
      if (end < 0) return;
      settle({ state: "live", holder: parseHolder(buffered.slice(0, end)), socket });
    });
    socket.once("error", (err) => {
      const code = errnoOf(err);
      settle(code === "ENOENT" ? { state: "gone" } : code === "ECONNREFUSED" ? { state: "stale" } : { state: "gone" });
    });
    socket.once("close", () => settle({ state: "gone" }));
  });
}

function parseHolder(line: string): LockHolder | undefined {
  try {
    const value = JSON.parse(line) as Partial<LockHolder>;
    if (!Number.isInteger(value.pid) || typeof value.name !== "string") return undefined;
    return { pid: value.pid!, name: value.name, index: String(value.index ?? ""), runtime: String(value.runtime ?? "") };
  } catch {
    return undefined;
  }
}

export type WaitResult = { holder: LockHolder | undefined; gone: Promise<void> } | undefined;

/**
 * Connects to the holder and resolves with who it is and a promise that settles when its
 * connection ends (the holder exited, or stepped down); undefined when nobody holds the lock.
 */
export async function watchHolder(path: string): Promise<WaitResult> {
  const probe = await probeHolder(path, true);
  if (probe.state !== "live") return undefined;
  const gone = new Promise<void>((resolve) => {
    probe.socket.once("close", () => resolve());
    probe.socket.once("error", () => resolve());
  });
  probe.socket.resume();
  return { holder: probe.holder, gone };
}

export type ReleaseResult = { released: true; holder: LockHolder | undefined } | { released: false; holder: LockHolder | undefined; reason: string };

/** Asks the holder to step down and waits (at most `timeoutMs`) until it has. */
export function requestRelease(path: string, timeoutMs: number): Promise<ReleaseResult | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let holder: LockHolder | undefined;
    let buffered = "";
    let settled = false;
    const settle = (result: ReleaseResult | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => settle({ released: false, holder, reason: `no answer in ${timeoutMs} ms` }), timeoutMs);
    socket.setEncoding("utf8");
    socket.once("connect", () => socket.write("release\n"));
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        if (line === "released") settle({ released: true, holder });
        else holder ??= parseHolder(line);
      }
    });
    socket.once("error", () => settle(undefined));
    socket.once("close", () => settle(holder ? { released: false, holder, reason: "it closed the connection without releasing" } : undefined));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

class Holder implements HeldLock {
  readonly lost: Promise<LockLoss>;
  private readonly path: string;
  private readonly inode: number;
  private readonly server: Server;
  private readonly connections = new Set<Socket>();
  private readonly checkTimer: ReturnType<typeof setInterval>;
  private lose: (loss: LockLoss) => void = () => {};
  private releasing: Promise<void> | undefined;

  constructor(path: string, inode: number, server: Server, identity: LockHolder, options: AcquireOptions) {
    this.path = path;
    this.inode = inode;
    this.server = server;
    this.lost = new Promise((resolve) => (this.lose = resolve));
    server.on("connection", (socket: Socket) => {
      this.connections.add(socket);
      socket.once("close", () => this.connections.delete(socket));
      socket.on("error", () => socket.destroy());
      socket.write(JSON.stringify(identity) + "\n");
      let buffered = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        buffered += chunk;
        if (!buffered.includes("release\n")) return;
        void this.stepDown(socket, options.onReleaseRequest);
      });
    });
    // Someone removed or replaced the lock file: another instance may be active now.
    this.checkTimer = setInterval(() => {
      if (inodeOf(path) !== inode) void this.release().then(() => this.lose("taken away"));
    }, options.checkIntervalMs ?? 5000);
    this.checkTimer.unref();
  }

  private async stepDown(requester: Socket, beforeRelease: () => Promise<void>): Promise<void> {
    if (this.releasing) return;
    try {
      await beforeRelease();
    } finally {
      await this.release(requester);
    }
    requester.end("released\n");
    this.lose("released");
  }

  release(except?: Socket): Promise<void> {
    this.releasing ??= (async () => {
      clearInterval(this.checkTimer);
      if (inodeOf(this.path) === this.inode) {
        try {
          unlinkSync(this.path);
        } catch {
          // Removed meanwhile.
        }
      }
      // Not awaited: close() waits for every connection, and the requester's ends after our answer.
      this.server.close();
      // Waiting instances learn the lock is free.
      for (const socket of this.connections) if (socket !== except) socket.destroy();
    })();
    return this.releasing;
  }
}

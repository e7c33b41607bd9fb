/**
 * `procview-runc`: an OCI runtime with runc's command line. `create` and `run` first give
 * the container its procview views (views.ts), `delete` forgets its record; then, and
 * for every other command at once, the real runc runs with the arguments as given.
 *
 * This module is on the path of every runc call, so it loads only the flag parser: the
 * policy, settings and registry code is imported when a container is created or deleted,
 * and node:child_process (~6 ms of CPU) only where runc runs as a child.
 */

import { existsSync, realpathSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import { parseRuncArgs } from "./args.ts";

/** runc's state root when --root is not given (as root; rootless runc picks another). */
const runcDefaultRoot = "/run/runc";

/**
 * The real runc: PROCVIEW_RUNC, else the first `runc` on PATH that is not this program
 * (procview-runc may be installed under the name runc, ahead of the real one).
 */
export function findRunc(env: NodeJS.ProcessEnv, self: string | undefined): string {
  const configured = env.PROCVIEW_RUNC;
  if (configured) return configured;
  const own = self === undefined ? undefined : realOrSelf(self);
  for (const dir of (env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, "runc");
    try {
      if (!statSync(candidate).isFile()) continue;
    } catch {
      continue;
    }
    if (realOrSelf(candidate) !== own) return candidate;
  }
  throw new Error("no runc found: set PROCVIEW_RUNC or put runc on PATH");
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Replaces this process with runc (Node ≥ 22.15), so runc keeps our pid, fds and signals;
 * elsewhere (Deno) runs it as a child.
 */
async function execRunc(runc: string, args: readonly string[], preserveFds: number): Promise<void> {
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (execve === undefined) return await spawnRunc(runc, args, preserveFds, () => {});
  // Its experimental-feature warning would go out on the next tick, after exec: never seen.
  execve(runc, [runc, ...args], process.env);
}

/**
 * Runs runc as a child (where exec is unavailable, or where something must happen after
 * runc ends): same stdio and preserved fds, signals forwarded, its exit status ours.
 */
async function spawnRunc(runc: string, args: readonly string[], preserveFds: number, after: (code: number) => void): Promise<void> {
  const { spawn } = await import("node:child_process");
  const inherited = Array.from({ length: preserveFds }, (_, i) => i + 3);
  const child = spawn(runc, args, { stdio: ["inherit", "inherit", "inherit", ...inherited] });
  const forwarded: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"];
  for (const signal of forwarded) process.on(signal, () => child.kill(signal));
  child.on("error", (err) => {
    process.stderr.write(`procview-runc: cannot run ${runc}: ${err.message}\n`);
    process.exit(127);
  });
  child.on("exit", (code, signal) => {
    const status = code ?? 128 + (signal === null ? 0 : signalNumber(signal));
    try {
      after(status);
    } catch {
      // runc's status is the answer; a record left behind costs a few bytes on tmpfs.
    }
    process.exit(status);
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };
  return numbers[signal] ?? 0;
}

export async function main(args: readonly string[], self: string | undefined): Promise<void> {
  let runc: string;
  try {
    runc = findRunc(process.env, self);
  } catch (err) {
    process.stderr.write(`procview-runc: ${(err as Error).message}\n`);
    process.exit(127);
  }
  const invocation = parseRuncArgs(args);
  // Unknown to us, runc's --preserve-fds is unknown too: exec keeps every fd anyway.
  if (invocation.kind === "pass-through") return await execRunc(runc, args, 0);

  const [{ addViewsToBundle, forgetDeleted }, { runcLog }] = await Promise.all([import("./views.ts"), import("./log.ts")]);
  const env = process.env;
  if (invocation.kind === "delete") {
    const stateOf = join(invocation.globals.root ?? runcDefaultRoot, invocation.id);
    return await spawnRunc(runc, args, 0, () => forgetDeleted(invocation.id, env, existsSync(stateOf)));
  }
  const log = runcLog(invocation.globals);
  const bound = await addViewsToBundle({ id: invocation.id, bundle: invocation.bundle ?? process.cwd(), globals: invocation.globals, env, log });
  // A foreground `run` deletes the container when it exits: forget the record then, as `delete` would.
  if (bound && invocation.kind === "run" && !invocation.detach && !invocation.keep) {
    return await spawnRunc(runc, args, invocation.preserveFds, () => forgetDeleted(invocation.id, env, false));
  }
  await execRunc(runc, args, invocation.preserveFds);
}

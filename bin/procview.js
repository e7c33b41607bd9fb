#!/usr/bin/env node
// Launcher for `procview`. A checkout runs the TypeScript sources (Node >= 22.18 strips
// the types; an older Node found first on PATH hands over to the Node the project pins as
// a devDependency). The npm package ships the JavaScript built by `npm run build` instead:
// Node and Deno refuse to strip types below node_modules.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

// A FUSE server runs with two V8 flags and a malloc setting. Semi-spaces of 1 MiB for the
// main thread, as worker threads get in their resourceLimits: Node's default lets them grow
// to 32 MiB under load, which a server serving on its main thread (--workers 0) kept, ~22
// MiB more RSS at the same reads/s. And --expose-gc, for the full collections its serving
// threads run every few seconds (core/heap-collection.ts). And two malloc arenas
// (MALLOC_ARENA_MAX): glibc gives each thread that allocates while another holds an arena
// one of its own, and a server's serving threads, V8's and libuv's pools grew nine, each
// keeping what its thread freed below a live block; two held 2-5 MiB less at the same
// reads/s. V8 takes its flags, and glibc that variable, when the process starts, so it
// starts again with them (the same pid, as systemd and the harness expect). Not when
// containerd pre-launched it: the NRI socket it hands over as fd 3 is close-on-exec by then
// (Node marks it). A semi-space size or an arena count the caller set, by flag,
// NODE_OPTIONS or the environment, wins.
const semiSpaceFlag = "--max-semi-space-size=1";
const setsSemiSpace = (flags) => flags.some((flag) => flag.startsWith("--max-semi-space-size"));
const callerFlags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
const startsServer = typeof globalThis.Deno === "undefined" && ["fuse", "run"].includes(process.argv[2]) && !process.env.NRI_PLUGIN_SOCKET;
const nodeFlags = startsServer
  ? [...(setsSemiSpace(callerFlags) ? [] : [semiSpaceFlag]), ...(callerFlags.includes("--expose-gc") ? [] : ["--expose-gc"])]
  : [];
const arenaEnv = startsServer && process.env.MALLOC_ARENA_MAX === undefined ? { MALLOC_ARENA_MAX: "2" } : {};
if ((nodeFlags.length > 0 || arenaEnv.MALLOC_ARENA_MAX) && typeof process.execve === "function") {
  process.execve(process.execPath, [process.execPath, ...nodeFlags, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, ...arenaEnv });
}

const source = fileURLToPath(new URL("../cli/procview.ts", import.meta.url));
const built = fileURLToPath(new URL("../dist/cli/procview.js", import.meta.url));
const [major, minor] = process.versions.node.split(".").map(Number);
const stripsTypes = major > 22 || (major === 22 && minor >= 18);

if (!existsSync(source)) {
  await import(built);
} else if (stripsTypes || typeof globalThis.Deno !== "undefined") {
  if (typeof globalThis.Deno === "undefined" && process.env.NODE_COMPILE_CACHE === undefined) {
    // Node's compile cache beside the code (same owner, so no more trust than the sources
    // get): later starts skip type stripping and compiling, some 45 MiB less RSS for a FUSE server.
    const { enableCompileCache } = await import("node:module");
    enableCompileCache?.(fileURLToPath(new URL("../.cache/node-compile-cache", import.meta.url)));
  }
  await import(source);
} else {
  const pinned = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`procview needs Node >= 22.18 to run from its sources (this is ${process.version}); run 'npm install' or put a newer node first on PATH\n`);
    process.exit(1);
  }
  const child = spawn(pinned, [...nodeFlags, source, ...process.argv.slice(2)], { stdio: "inherit", env: { ...process.env, ...arenaEnv } });
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}

/**
 * The single executable's entry (scripts/build.ts): `procview`, or the OCI runtime
 * `procview-runc` when invoked under that name (install.sh puts a procview-runc symlink
 * beside the executable; `runc` too, for an install ahead of the real runc on PATH). So
 * the runtime needs no Node on the host either.
 *
 * The runtime runs on every runc call: only its module is evaluated then (the bundle
 * defers each dynamically imported module until it is imported), not the FUSE server's
 * or the plugin's.
 *
 * A FUSE server (`fuse`, `run`) starts again, as the same process, with two malloc arenas
 * unless the environment sets MALLOC_ARENA_MAX: glibc reads it only when a process starts
 * (why, in bin/procview.js, which does the same for the package; the executable carries
 * its V8 flags itself). Not when containerd pre-launched it (its NRI socket is
 * close-on-exec).
 */

import { basename } from "node:path";

const runtimeNames = new Set(["procview-runc", "runc"]);

const [command] = process.argv.slice(2);
const startsServer = (command === "fuse" || command === "run") && !process.env.NRI_PLUGIN_SOCKET;

if (runtimeNames.has(basename(process.argv0))) {
  // execPath is the executable's real path: findRunc skips it when it looks for the real runc.
  void import("../oci-runtime/main.ts").then(({ main }) => main(process.argv.slice(2), process.execPath));
} else if (startsServer && process.env.MALLOC_ARENA_MAX === undefined && typeof process.execve === "function") {
  process.execve(process.execPath, [process.argv0, ...process.argv.slice(2)], { ...process.env, MALLOC_ARENA_MAX: "2" });
} else {
  void import("./procview.ts");
}

/**
 * The single executable's entry (scripts/build.ts): `procview`, or the OCI runtime
 * `procview-runc` when invoked under that name (install.sh puts a procview-runc symlink
 * beside the executable; `runc` too, for an install ahead of the real runc on PATH). So
 * the runtime needs no Node on the host either.
 *
 * The runtime runs on every runc call: only its module is evaluated then (the bundle
 * defers each dynamically imported module until it is imported), not the FUSE server's
 * or the plugin's.
 */

import { basename } from "node:path";

const runtimeNames = new Set(["procview-runc", "runc"]);

if (runtimeNames.has(basename(process.argv0))) {
  // execPath is the executable's real path: findRunc skips it when it looks for the real runc.
  void import("../oci-runtime/main.ts").then(({ main }) => main(process.argv.slice(2), process.execPath));
} else {
  void import("./procview.ts");
}

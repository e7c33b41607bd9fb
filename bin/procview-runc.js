#!/usr/bin/env node
// Launcher for `procview-runc`, the OCI runtime: it runs on every runc call, so it starts
// with the compile cache on (Node keeps the type-stripped sources there: without it,
// loading the TypeScript stripper costs ~45 ms per call) and loads only the flag parser
// before handing most commands straight to runc. Needs Node >= 22.18 for type stripping
// (and >= 22.15 for exec); an older Node re-runs it under the project's pinned Node. The
// npm package ships the JavaScript built by `npm run build` instead of the sources.
import { existsSync } from "node:fs";
import * as nodeModule from "node:module";
import { fileURLToPath } from "node:url";

const source = new URL("../oci-runtime/main.ts", import.meta.url);
const entry = existsSync(fileURLToPath(source)) ? source : new URL("../dist/oci-runtime/main.js", import.meta.url);
const [major, minor] = process.versions.node.split(".").map(Number);
const stripsTypes = major > 22 || (major === 22 && minor >= 18);

if (entry !== source || stripsTypes || typeof globalThis.Deno !== "undefined") {
  nodeModule.enableCompileCache?.();
  const { main } = await import(entry.href);
  await main(process.argv.slice(2), process.argv[1]);
} else {
  const pinned = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`procview-runc needs Node >= 22.18 (this is ${process.version}); run 'npm install' or put a newer node first on PATH\n`);
    process.exit(1);
  }
  const self = fileURLToPath(import.meta.url);
  const { spawn } = await import("node:child_process");
  const child = spawn(pinned, [self, ...process.argv.slice(2)], { stdio: "inherit" });
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}

/**
 * `npm run build`: what procview ships, built from the TypeScript sources.
 *
 *   dist/{cli,core,fuse,nri,nri-plugin,oci-runtime,views}/…js, dist/proto/*.proto
 *       the sources compiled by tsc (relative imports rewritten to .js), for the npm
 *       package: Node and Deno refuse to strip types below node_modules.
 *   dist/procview
 *       a single executable: Node's single executable application (SEA), the project's
 *       node binary with one CommonJS bundle of the program injected by postject. It needs
 *       no Node, no node_modules and no files beside it. Invoked as `procview-runc`
 *       (a symlink) it is the OCI runtime.
 *
 * The bundle has no files on disk to start worker threads from or to read the .proto
 * definitions from, so some imports are answered differently inside it (see
 * bundleOverrides): the worker threads (FUSE requests, namespace binds) and the tree the
 * FUSE worker serves are bundled apart and handed over as data: URLs, and the protos are
 * bundled as text. koffi's native module (the libc calls of core/syscalls.ts) rides along
 * as a SEA asset.
 *
 * Usage: node scripts/build.ts [--out DIR] [--package-only]
 */

import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";
import { koffiAsset } from "../core/syscalls.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const nodeBinary = join(root, "node_modules/node/bin/node");
/** postject's marker that Node looks for to know a blob was injected (from Node's SEA documentation). */
const seaFuse = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { cwd: root, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`);
  }
}

/** The npm package's JavaScript: tsc per file, so worker and tree modules stay files that workers load by URL. */
function compilePackage(out: string): void {
  run(nodeBinary, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", out]);
  mkdirSync(join(out, "proto"), { recursive: true });
  for (const name of readdirSync(join(root, "proto")).filter((name) => name.endsWith(".proto"))) {
    copyFileSync(join(root, "proto", name), join(out, "proto", name));
  }
}

const common: esbuild.BuildOptions = {
  bundle: true,
  platform: "node",
  target: "node24",
  write: false,
  logLevel: "error",
  // fuse-native is an optional native addon: a single executable cannot load it (--backend kernel only).
  external: ["fuse-native"],
  absWorkingDir: root,
};

async function bundleText(entry: string, format: esbuild.Format, plugins: esbuild.Plugin[] = []): Promise<string> {
  const result = await esbuild.build({ ...common, entryPoints: [entry], format, plugins });
  return result.outputFiles![0]!.text;
}

function dataUrl(moduleText: string): string {
  return `data:text/javascript;base64,${Buffer.from(moduleText).toString("base64")}`;
}

/**
 * Inside the bundle: the Workers of the request loop and of the namespace binds start their bundled worker (data: URL) whatever
 * file URL it is given; cli/tree-module.ts names the bundled tree; nri/api.ts reads
 * the .proto files from texts bundled with it.
 */
function bundleOverrides(workers: Record<string, string>, treeModule: string): esbuild.Plugin {
  const protos = Object.fromEntries(
    readdirSync(join(root, "proto")).filter((name) => name.endsWith(".proto")).map((name) => [name, readFileSync(join(root, "proto", name), "utf8")]),
  );
  const workerThreads = (workerModule: string): string => `export * from "node:worker_threads";
import { Worker as ThreadWorker } from "node:worker_threads";
const bundledWorker = new URL(${JSON.stringify(dataUrl(workerModule))});
export class Worker extends ThreadWorker { constructor(_file, options) { super(bundledWorker, options); } }`;
  const virtual: Record<string, string> = {
    ...Object.fromEntries(Object.entries(workers).map(([importer, workerModule]) => [`worker-threads:${importer}`, workerThreads(workerModule)])),
    "tree-module": `export const procviewTreeModule = ${JSON.stringify(dataUrl(treeModule))};`,
    "proto-fs": `export * from "node:fs";
import { readFileSync as readFromDisk } from "node:fs";
const protos = ${JSON.stringify(protos)};
export function readFileSync(path, options) {
  const name = String(path).split("/").pop();
  return String(path).includes("/proto/") && name in protos ? protos[name] : readFromDisk(path, options);
}`,
  };
  const overridden = new Map<string, string>();
  return {
    name: "procview-bundle-overrides",
    setup(build) {
      build.onResolve({ filter: /^node:worker_threads$/ }, (args) => {
        // Not from the virtual module itself, whose name ends with its importer's.
        const importer = args.namespace === "file" && Object.keys(workers).find((source) => args.importer.endsWith(source));
        return importer ? { path: `worker-threads:${importer}`, namespace: "procview" } : undefined;
      });
      build.onResolve({ filter: /\/tree-module\.ts$/ }, (args) =>
        args.importer.endsWith("cli/procview.ts") ? { path: "tree-module", namespace: "procview" } : undefined,
      );
      build.onResolve({ filter: /^node:fs$/ }, (args) =>
        args.importer.endsWith("nri/api.ts") ? { path: "proto-fs", namespace: "procview" } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: "procview" }, (args) => {
        overridden.set(args.path, args.path);
        return { contents: virtual[args.path]!, loader: "js", resolveDir: root };
      });
      // A rename in the sources must not silently drop an override: the executable would
      // then look for files it does not have.
      build.onEnd((result) => {
        if (result.errors.length > 0) return;
        const missing = Object.keys(virtual).filter((name) => !overridden.has(name));
        if (missing.length > 0) throw new Error(`bundle overrides not applied (sources moved?): ${missing.join(", ")}`);
      });
    },
  };
}

/**
 * koffi's prebuilt native module for this platform (glibc: the pinned node binary is glibc's),
 * where npm put it: its per-platform package, or koffi's own build directory.
 */
function koffiNativeModule(): string {
  const triplet = `${process.platform}_${process.arch}`;
  const candidates = [
    join(root, `node_modules/@koromix/koffi-${process.platform}-${process.arch}`, triplet, "koffi.node"),
    join(root, `node_modules/koffi/node_modules/@koromix/koffi-${process.platform}-${process.arch}`, triplet, "koffi.node"),
    join(root, "node_modules/koffi/build/koffi", triplet, "koffi.node"),
  ];
  const found = candidates.find((file) => existsSync(file));
  if (!found) throw new Error(`koffi's native module for ${triplet} not found (run npm install); looked in:\n${candidates.join("\n")}`);
  return found;
}

/**
 * The executable's V8 flags, as bin/procview.js starts the FUSE server with them: semi-spaces
 * of 1 MiB for the main thread, and the gc its serving threads call every few seconds
 * (core/heap-collection.ts).
 */
const seaExecArgv = ["--max-semi-space-size=1", "--expose-gc"];

/** dist/procview: the node binary with the bundled program injected as its SEA blob. */
async function buildExecutable(out: string): Promise<void> {
  const work = join(out, ".sea");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const workers = {
    "fuse/kernel/request-loop.ts": await bundleText("fuse/kernel/worker.ts", "esm"),
    "core/namespace-binds.ts": await bundleText("core/namespace-binds-worker.ts", "esm"),
  };
  const treeModule = await bundleText("views/procview-tree.ts", "esm");
  const main = await esbuild.build({
    ...common,
    entryPoints: ["cli/executable.ts"],
    format: "cjs",
    // What import.meta.url is still used for inside the bundle (module-relative URLs) is overridden above.
    define: { "import.meta.url": JSON.stringify("file:///procview/dist/procview.cjs") },
    plugins: [bundleOverrides(workers, treeModule)],
  });
  const mainFile = join(work, "procview.cjs");
  writeFileSync(mainFile, main.outputFiles![0]!.text);
  const blob = join(work, "procview.blob");
  writeFileSync(
    join(work, "sea-config.json"),
    JSON.stringify({
      main: mainFile,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      execArgv: seaExecArgv,
      assets: { [koffiAsset]: koffiNativeModule() },
    }),
  );
  // The code cache is made under the same flags, or V8 rejects it at every start.
  run(nodeBinary, [...seaExecArgv, "--experimental-sea-config", join(work, "sea-config.json")]);
  const executable = join(out, "procview");
  copyFileSync(nodeBinary, `${executable}.tmp`);
  chmodSync(`${executable}.tmp`, 0o755);
  run(nodeBinary, [join(root, "node_modules/postject/dist/cli.js"), `${executable}.tmp`, "NODE_SEA_BLOB", blob, "--sentinel-fuse", seaFuse]);
  renameSync(`${executable}.tmp`, executable);
  rmSync(work, { recursive: true, force: true });
}

/** What compilePackage writes below `out`. */
const packageDirs = ["cli", "core", "fuse", "nri", "nri-plugin", "oci-runtime", "views", "proto"];

export async function build(out: string, options: { packageOnly?: boolean } = {}): Promise<void> {
  for (const dir of packageDirs) rmSync(join(out, dir), { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  compilePackage(out);
  if (!options.packageOnly) await buildExecutable(out);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: "string" }, "package-only": { type: "boolean" } } });
  const out = resolve(values.out ?? join(root, "dist"));
  mkdirSync(dirname(out), { recursive: true });
  await build(out, { packageOnly: values["package-only"] });
  process.stdout.write(`built ${out}${values["package-only"] ? "" : ` and ${join(out, "procview")}`}\n`);
}

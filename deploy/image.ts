/**
 * `npm run image`: the DaemonSet's OCI image, built offline with the project's own image
 * tooling (integration/oci-image.ts), no registry, no base image, no container engine.
 *
 * It holds only what runs: the single executable dist/procview, util-linux's mount and
 * umount (the FUSE server mounts /dev/fuse with `mount -t fuse.procview`, see
 * fuse/kernel/mount.ts), nsenter (the fuse container joins the host's cgroup
 * namespace), each with the shared libraries `ldd` lists for it, taken from this Debian
 * host. Writes an OCI image-layout tar that `ctr images import` (or `docker load` /
 * `podman load`) accepts.
 *
 * Usage: node deploy/image.ts [--binary dist/procview] [--out dist/procview-image.tar] [--name NAME]
 */

import { execFileSync } from "node:child_process";
import { readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { hostPlatform, ociImageLayout } from "../integration/oci-image.ts";
import { tarArchive, type TarEntry } from "../integration/tar-writer.ts";
import { version } from "../core/version.ts";

/** The reference the DaemonSet names; `localhost/` says it is never pulled from a registry. */
export const procviewImageName = `localhost/procview:${version}`;

/** Host tools the image carries, by where they land in it: util-linux's mount, umount and nsenter. */
const hostTools: Record<string, string> = { "bin/mount": "mount", "bin/umount": "umount", "bin/nsenter": "nsenter" };

/** Absolute paths of the shared libraries (and the loader) `ldd` lists for `binary`. */
export function sharedLibraries(lddOutput: string): string[] {
  const paths: string[] = [];
  for (const line of lddOutput.split("\n")) {
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line.trim());
    if (match) paths.push(match[1]!);
  }
  return paths;
}

function which(tool: string): string {
  for (const dir of ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]) {
    try {
      if (statSync(join(dir, tool)).isFile()) return join(dir, tool);
    } catch {
      // not in this one
    }
  }
  throw new Error(`the image needs ${tool} from this host (Debian: util-linux, mount)`);
}

/** The image's single layer: the executable, the tools, their libraries and the folders runtimes mount over. */
export function procviewRootfs(binary: string): Buffer {
  const files = new Map<string, { source: string; mode: number }>([["bin/procview", { source: binary, mode: 0o755 }]]);
  for (const [target, tool] of Object.entries(hostTools)) files.set(target, { source: which(tool), mode: 0o755 });
  for (const { source } of [...files.values()]) {
    for (const library of sharedLibraries(execFileSync("ldd", [source], { encoding: "utf8" }))) {
      // Libraries keep their path (the loader's path is built into every binary); symlinks are resolved.
      files.set(library.slice(1), { source: realpathSync(library), mode: 0o755 });
    }
  }
  const dirs = new Set<string>(["dev", "proc", "sys", "run", "var", "var/lib", "var/run", "etc"]);
  for (const path of files.keys()) {
    for (let dir = dirname(path); dir !== "."; dir = dirname(dir)) dirs.add(dir);
  }
  const entries: TarEntry[] = [...dirs].sort().map((path) => ({ type: "directory", path }));
  entries.push({ type: "directory", path: "tmp", mode: 0o1777 });
  for (const [path, { source, mode }] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    entries.push({ type: "file", path, content: readFileSync(source), mode });
  }
  return tarArchive(entries);
}

export function buildProcviewImage(binary: string, out: string, name = procviewImageName): void {
  const layer = procviewRootfs(binary);
  writeFileSync(out, ociImageLayout(layer, [{ name, cmd: ["/bin/procview", "--help"] }], hostPlatform()));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const { values } = parseArgs({ options: { binary: { type: "string" }, out: { type: "string" }, name: { type: "string" } } });
  const binary = resolve(values.binary ?? join(root, "dist/procview"));
  const out = resolve(values.out ?? join(root, "dist/procview-image.tar"));
  buildProcviewImage(binary, out, values.name ?? procviewImageName);
  process.stdout.write(`wrote ${out} (${values.name ?? procviewImageName}); import it with: ctr -n k8s.io images import ${out}\n`);
}

/**
 * OCI bundles for driving runc (and procview-runc) directly, without containerd: a
 * busybox rootfs from Debian's busybox-static, `runc spec`'s config as a template, and a
 * fresh config.json per container (procview-runc edits the bundle's copy at every create).
 * Containers go below a private cgroup parent that removeLeftovers() clears.
 */

import { execFile, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { promisify } from "node:util";
import { debianPackage } from "./debian-packages.ts";
import { cgroupHierarchyRoots, cgroupMembers, killAll, removeCgroupTrees } from "./leftovers.ts";

const execFileAsync = promisify(execFile);
const callTimeoutMs = 30_000;

export interface RuncBundles {
  /** Debian bookworm's runc (1.1.5). */
  runc: string;
  /** runc's --root for these containers. */
  root: string;
  /** Relative to every cgroup hierarchy's root. */
  cgroupParent: string;
  /** Writes `<bundle>/config.json` for container `id`: `args` (default `sleep 3600`), a 50 MiB limit, `annotations`. */
  writeConfig(bundle: string, id: string, annotations: Record<string, string>, args?: string[]): void;
  /** Kills and deletes whatever containers are left, removes their cgroups. */
  removeLeftovers(): Promise<void>;
}

export const bundleMemoryLimit = 52428800;

export async function prepareRuncBundles(dir: string): Promise<RuncBundles> {
  const [runcPackage, busyboxPackage] = await Promise.all([debianPackage("runc", "bookworm"), debianPackage("busybox-static", "bookworm")]);
  const runc = join(runcPackage, "usr", "sbin", "runc");
  const rootfs = join(dir, "rootfs");
  for (const sub of ["bin", "proc", "sys", "dev", "tmp"]) mkdirSync(join(rootfs, sub), { recursive: true });
  copyFileSync(join(busyboxPackage, "bin", "busybox"), join(rootfs, "bin", "busybox"));
  chmodSync(join(rootfs, "bin", "busybox"), 0o755);
  for (const applet of ["sh", "sleep", "head", "cat"]) symlinkSync("busybox", join(rootfs, "bin", applet));
  execFileSync(runc, ["spec", "--bundle", dir]);
  const template = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  const root = join(dir, "runc-root");
  const cgroupParent = `/procview-runc-${posix.basename(dir).replace(/[^A-Za-z0-9_-]/g, "")}`;
  const cgroupDirs = () => cgroupHierarchyRoots(readFileSync("/proc/self/mountinfo", "utf8")).map((hierarchy) => posix.join(hierarchy, cgroupParent));

  return {
    runc,
    root,
    cgroupParent,
    writeConfig(bundle, id, annotations, args = ["sleep", "3600"]) {
      const spec = structuredClone(template) as {
        root: { path: string };
        process: { terminal: boolean; args: string[] };
        linux: { cgroupsPath?: string; resources?: Record<string, unknown> };
        annotations?: Record<string, string>;
      };
      spec.root.path = rootfs;
      spec.process.terminal = false;
      spec.process.args = args;
      spec.linux.cgroupsPath = `${cgroupParent}/${id}`;
      spec.linux.resources = { ...spec.linux.resources, memory: { limit: bundleMemoryLimit } };
      spec.annotations = annotations;
      mkdirSync(bundle, { recursive: true });
      writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
    },
    async removeLeftovers() {
      killAll(cgroupMembers(cgroupDirs()));
      for (const id of existsSync(root) ? readdirSync(root) : []) {
        await execFileAsync(runc, ["--root", root, "delete", "--force", id], { timeout: callTimeoutMs }).catch(() => {});
      }
      removeCgroupTrees(cgroupDirs());
    },
  };
}

/**
 * Runs a runtime command with no stdio (with `create`, the container keeps the stdio it
 * is given, so a pipe would never close); fails on a non-zero exit, kills it after 30 s.
 */
export async function runQuietly(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const child = spawn(file, args, { env, stdio: "ignore", timeout: callTimeoutMs });
  const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
  if (code !== 0) throw new Error(`${file} ${args.join(" ")}: exit ${code ?? signal}`);
}

/**
 * Debian programs run straight from their unpacked packages (debianPackage), never from
 * the system: dockerd and lxcfs are resolved below `.cache/debian`, whatever is installed
 * system-wide, so `npm test` needs no install on a fresh Debian 12 and always tests the
 * same versions. A tool lists every package it needs beyond a minimal Debian: the programs
 * it starts (found on the PATH given here, before the system's folders) and the libraries
 * a fresh machine lacks (found through LD_LIBRARY_PATH).
 */

import { execFile } from "node:child_process";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { debianPackage, type DebianSuite } from "./debian-packages.ts";

const execFileAsync = promisify(execFile);

export interface DebianToolSpec {
  /** The package holding the executable, and its path inside the package, e.g. `usr/sbin/dockerd`. */
  binary: { package: string; path: string };
  /** Further packages whose programs it starts or whose libraries it loads. */
  needs: readonly string[];
  suite: DebianSuite;
}

export interface DebianTool {
  /** Absolute path of the executable below `.cache/debian/<suite>/<package>`. */
  binary: string;
  /** Unpacked folder of each package, by name. */
  packages: ReadonlyMap<string, string>;
  /** The environment to start it with: the packages' bin folders first on PATH, their library folders on LD_LIBRARY_PATH. */
  env: NodeJS.ProcessEnv;
}

/** The system's folders, after the private ones: util-linux's mount and friends live there. */
const systemPath = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
const binFolders = ["usr/sbin", "usr/bin", "sbin", "bin"];

/**
 * Downloads (first time only) and unpacks the packages, and checks with ldd that every
 * library the executable links against is found: a missing one fails here, naming it,
 * instead of as an exit code from a daemon's start.
 */
export async function debianTool(spec: DebianToolSpec): Promise<DebianTool> {
  const names = [spec.binary.package, ...spec.needs];
  const dirs = await Promise.all(names.map((name) => debianPackage(name, spec.suite)));
  const packages = new Map(names.map((name, i) => [name, dirs[i]]));
  const binary = join(packages.get(spec.binary.package)!, spec.binary.path);
  if (!(await stat(binary).catch(() => undefined))?.isFile()) {
    throw new Error(`Debian package ${spec.binary.package} (${spec.suite}) has no ${spec.binary.path}`);
  }
  const bin: string[] = [];
  const libraries: string[] = [];
  for (const dir of dirs) {
    for (const folder of binFolders) if ((await stat(join(dir, folder)).catch(() => undefined))?.isDirectory()) bin.push(join(dir, folder));
    libraries.push(...(await libraryFolders(dir)));
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [...bin, ...systemPath].join(":"),
    LD_LIBRARY_PATH: libraries.join(":"),
  };
  await checkLibraries(binary, env, names);
  return { binary, packages, env };
}

/** Folders below lib/ and usr/lib/ that hold shared libraries (multiarch or plugin folders alike). */
async function libraryFolders(packageDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (entries.some((entry) => !entry.isDirectory() && /\.so(\.|$)/.test(entry.name))) found.push(dir);
    for (const entry of entries) if (entry.isDirectory()) await walk(join(dir, entry.name));
  };
  await walk(join(packageDir, "lib"));
  await walk(join(packageDir, "usr", "lib"));
  return found;
}

async function checkLibraries(binary: string, env: NodeJS.ProcessEnv, packages: readonly string[]): Promise<void> {
  const { stdout } = await execFileAsync("ldd", [binary], { env }).catch((error: unknown) => {
    // ldd exits 1 for a static executable ("not a dynamic executable"): nothing to load.
    const output = (error as { stdout?: string; stderr?: string }).stdout ?? "";
    return { stdout: output };
  });
  const missing = [...stdout.matchAll(/^\s*(\S+) => not found/gm)].map(([, name]) => name);
  if (missing.length > 0) {
    throw new Error(
      `${binary} needs ${missing.join(", ")}, found neither in its private packages (${packages.join(", ")}) nor on this system: ` +
        `add the Debian package that ships it to the tool's packages`,
    );
  }
}

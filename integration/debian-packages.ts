/**
 * Debian packages as plain directories for the integration tests: containerd from trixie,
 * runc and busybox from bookworm, API definitions (.proto) shipped as -dev packages.
 * Packages are downloaded and unpacked with `dpkg -x`, never installed, so a bookworm
 * machine can use trixie binaries without mixing suites in its dpkg database.
 */

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { findDebianMirror, type AptSourceFile } from "./apt-sources.ts";

export type DebianSuite = "bookworm" | "trixie";

const execFileAsync = promisify(execFile);
const suites: readonly DebianSuite[] = ["bookworm", "trixie"];
const moduleUrl = import.meta.url;
const cacheRoot = join(fileURLToPath(new URL("..", moduleUrl)), ".cache", "debian");
/** apt-get may wait for a mirror; a lock holder can be another test process doing that. */
const lockWaitSeconds = "600";

/**
 * The directory `<repo>/.cache/debian/<suite>/<name>` holding the unpacked package
 * (its `usr/…` tree). Downloads only on the first call; concurrent callers in other
 * processes are safe: apt runs under a per-suite lock and the unpacked tree appears by rename.
 */
export async function debianPackage(name: string, suite: DebianSuite): Promise<string> {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new Error(`not a Debian package name: ${JSON.stringify(name)}`);
  if (!suites.includes(suite)) throw new Error(`unsupported Debian suite: ${JSON.stringify(suite)}`);
  const target = join(cacheRoot, suite, name);
  if (await isDirectory(target)) return target;

  await mkdir(join(cacheRoot, suite), { recursive: true });
  const downloadDir = await mkdtemp(join(cacheRoot, suite, `.download-${name}-`));
  const stagingDir = await mkdtemp(join(cacheRoot, suite, `.unpack-${name}-`));
  try {
    const deb = await downloadDeb(name, suite, downloadDir);
    await execFileAsync("dpkg", ["-x", deb, stagingDir]);
    try {
      await rename(stagingDir, target);
    } catch (error) {
      // Another process unpacked the same package first; its copy is as good as ours.
      if (!(await isDirectory(target))) throw error;
    }
    return target;
  } catch (error) {
    throw new Error(
      `cannot fetch Debian package ${name} (${suite}): ${describe(error)}\n` +
        `(the stack tests download what they run from the Debian mirror of this system's apt sources: check that it is reachable)`,
      { cause: error },
    );
  } finally {
    await rm(downloadDir, { recursive: true, force: true });
    await rm(stagingDir, { recursive: true, force: true });
  }
}

async function downloadDeb(name: string, suite: DebianSuite, into: string): Promise<string> {
  const apt = await privateAptConfig(suite);
  const aptGet = (args: string[]) =>
    execFileAsync("flock", ["-w", lockWaitSeconds, apt.lockFile, "apt-get", ...apt.options, ...args], {
      cwd: into,
      maxBuffer: 64 * 1024 * 1024,
    });
  if (!(await hasPackageLists(apt.listsDir))) await aptGet(["update"]);
  try {
    await aptGet(["download", name]);
  } catch {
    // Stale lists name a version the mirror has dropped; refresh once and retry.
    await aptGet(["update"]);
    await aptGet(["download", name]);
  }
  const debs = (await readdir(into)).filter((file) => file.endsWith(".deb"));
  if (debs.length !== 1) throw new Error(`apt-get download left ${debs.length} .deb files in ${into}`);
  return join(into, debs[0]);
}

interface PrivateApt {
  options: string[];
  listsDir: string;
  lockFile: string;
}

/** Own sources, lists and cache per suite, so the system's apt state is never touched. */
async function privateAptConfig(suite: DebianSuite): Promise<PrivateApt> {
  const dir = join(cacheRoot, "apt", suite);
  const listsDir = join(dir, "lists");
  const cacheDir = join(dir, "cache");
  const sourcesFile = join(dir, "sources.list");
  await mkdir(join(listsDir, "partial"), { recursive: true });
  await mkdir(join(cacheDir, "archives", "partial"), { recursive: true });
  const mirror = findDebianMirror(await systemAptSources(), await systemCodename());
  const signedBy = mirror.signedBy === undefined ? "" : `[signed-by=${mirror.signedBy}] `;
  await writeFile(sourcesFile, `deb ${signedBy}${mirror.uri} ${suite} main\n`);
  return {
    listsDir,
    lockFile: join(dir, "lock"),
    options: [
      "-q",
      "-o", `Dir::Etc::sourcelist=${sourcesFile}`,
      "-o", "Dir::Etc::sourceparts=/dev/null",
      "-o", `Dir::State::Lists=${listsDir}`,
      "-o", `Dir::Cache=${cacheDir}`,
      // Downloads land in a root-owned temp dir the _apt user cannot write to.
      "-o", "APT::Sandbox::User=root",
    ],
  };
}

async function systemAptSources(): Promise<AptSourceFile[]> {
  const files: AptSourceFile[] = [];
  const read = async (path: string) => {
    try {
      files.push({ path, text: await readFile(path, "utf8") });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  };
  await read("/etc/apt/sources.list");
  let parts: string[] = [];
  try {
    parts = (await readdir("/etc/apt/sources.list.d")).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  for (const part of parts) {
    if (part.endsWith(".list") || part.endsWith(".sources")) await read(join("/etc/apt/sources.list.d", part));
  }
  return files;
}

async function systemCodename(): Promise<string> {
  const osRelease = await readFile("/etc/os-release", "utf8");
  const codename = /^VERSION_CODENAME=["']?([a-z]+)/m.exec(osRelease)?.[1];
  if (codename === undefined) throw new Error("/etc/os-release has no VERSION_CODENAME: not a Debian system?");
  return codename;
}

async function hasPackageLists(listsDir: string): Promise<boolean> {
  return (await readdir(listsDir)).some((file) => file.includes("_Packages"));
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

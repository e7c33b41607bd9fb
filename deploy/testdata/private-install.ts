/**
 * install.sh run for a test: every path it writes lies in one temporary folder, with the
 * single executable the build makes, and nothing is started.
 */

import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { builtExecutable } from "./executable.ts";

const moduleUrl = import.meta.url;

export interface PrivateInstall {
  pluginDir: string;
  confDir: string;
  logDir: string;
}

export function privateInstallPaths(dir: string): PrivateInstall {
  return { pluginDir: join(dir, "plugins"), confDir: join(dir, "conf"), logDir: join(dir, "log") };
}

export function installIntoFolder(dir: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  const paths = privateInstallPaths(dir);
  return spawnSync(
    "/bin/sh",
    [
      fileURLToPath(new URL("../install.sh", moduleUrl)),
      "--binary", builtExecutable(),
      "--no-start",
      "--prefix", join(dir, "usr"),
      "--plugin-dir", paths.pluginDir,
      "--plugin-conf-dir", paths.confDir,
      "--unit-dir", join(dir, "units"),
      "--log-dir", paths.logDir,
      "--logrotate-dir", join(dir, "logrotate"),
      ...extraArgs,
    ],
    { encoding: "utf8", env, timeout: 120_000 },
  );
}

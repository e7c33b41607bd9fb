/**
 * The command line of `procview`, parsed into a typed command. Pure: argv and env in,
 * a command or a usage error out, so every flag and default is unit-tested.
 */

import { parseArgs } from "node:util";
import { defaultWorkers } from "../fuse/kernel/request-loop.ts";
import { isLogLevel, type LogLevel } from "../core/log.ts";
import { defaultStateDir } from "../core/registry.ts";
import { isDefaultPolicy } from "../nri-plugin/annotations.ts";
import type { PluginSettingsLayer } from "../nri-plugin/config.ts";
import { parseViewList } from "../nri-plugin/view-selection.ts";

export const defaultMountpoint = "/var/lib/procview";
export const defaultNriSocket = "/var/run/nri/nri.sock";
export const defaultPluginName = "procview";
export const defaultPluginIndex = "10";
export { defaultWorkers };

/** kernel: the FUSE protocol spoken from TypeScript; fuse-native: libfuse 2.9 through the fuse-native package (Node only). */
export type FuseBackend = "kernel" | "fuse-native";

/** The JavaScript runtime running the CLI: fuse-native's addon aborts under Deno. */
export type Runtime = "node" | "deno";

export interface FuseSettings {
  mountpoint: string;
  stateDir: string;
  workers: number;
  backend: FuseBackend;
  /** Show ceil(quota/period) CPUs instead of the whole cpuset (LXCFS's --enable-cfs). */
  cpuLimitByQuota: boolean;
}

export interface NriSettings {
  mountpoint: string;
  stateDir: string;
  name: string;
  index: string;
  /** The plugin settings given as flags; they override the config file and the runtime's config. */
  flagSettings: PluginSettingsLayer;
  /** --config: a YAML or JSON file of plugin settings, read at start. */
  configFile?: string;
  /** External mode: the runtime's NRI socket. */
  socketPath?: string;
  /** Pre-launched mode: the socket fd the runtime handed over (NRI_PLUGIN_SOCKET). */
  socketFd?: number;
}

export type Command =
  | { kind: "help"; text: string }
  | { kind: "fuse"; logLevel: LogLevel; fuse: FuseSettings }
  | { kind: "nri"; logLevel: LogLevel; nri: NriSettings }
  | { kind: "run"; logLevel: LogLevel; fuse: FuseSettings; nri: NriSettings };

export class UsageError extends Error {}

const mainHelp = `procview: containers that see their own limits in /proc

Usage: procview <command> [options]

Commands:
  fuse   serve the FUSE filesystem of per-container /proc views
  nri    run the NRI plugin that binds those views into containers
  run    both in one process

Run 'procview <command> --help' for a command's options.
`;

const commonOptionsHelp = `  --state-dir DIR     records shared by plugin and FUSE server (default ${defaultStateDir})
  --log-level LEVEL   debug, info, warn or error (default info)
  -h, --help          this text
`;

const fuseHelp = `Usage: procview fuse [options]

Serves the views under MOUNTPOINT until SIGTERM or SIGINT, then unmounts.
  containers/<id>/proc/meminfo …  per container, recorded by the NRI plugin
  proc/meminfo …                  LXCFS-compatible: rendered for the reading process's cgroup

Options:
  --mountpoint DIR    where to mount (default ${defaultMountpoint})
  --workers N         request-serving threads (default ${defaultWorkers}; kernel backend only)
  --backend B         kernel (default): the FUSE protocol spoken from TypeScript;
                      fuse-native: libfuse through the fuse-native package, Node only, and
                      containers/<id>/… only: it cannot tell who reads, so the
                      LXCFS-compatible reader-pid layout is unavailable
  --cpu-limit-by-quota
                      show ceil(quota/period) CPUs when a CPU quota is set, not the whole cpuset
${commonOptionsHelp}`;

const nriHelp = `Usage: procview nri [options]

Runs the NRI plugin: at CreateContainer it adds read-only binds of the container's views
under MOUNTPOINT over /proc/meminfo and friends, when the FUSE server is live.
Started by containerd as a pre-launched plugin (NRI_PLUGIN_SOCKET set), it uses the
handed-over socket and NRI_PLUGIN_NAME / NRI_PLUGIN_IDX.

Options:
  --socket PATH       containerd's NRI socket (default ${defaultNriSocket})
  --mountpoint DIR    the FUSE server's mountpoint (default ${defaultMountpoint})
  --name NAME         plugin name (default ${defaultPluginName})
  --index NN          two-digit plugin index, orders plugins (default ${defaultPluginIndex})
  --default-policy P  all: every container gets the views unless its pod opts out;
                      opted-in: only pods annotated procview.noderesource.dev=enabled (default all)
  --views LIST        views bound when no annotation chooses: all (default) or a list of
                      meminfo,cpuinfo,stat,uptime,diskstats,swaps,loadavg,cpu/online
  --cpu-limit-by-quota
                      record ceil(quota/period) CPUs as every container's default
                      (annotations still choose; without it the FUSE server's flag decides)
  --config FILE       plugin settings (YAML or JSON: defaultPolicy, views, cpuByQuota);
                      precedence: flags > containerd's plugin config > FILE > defaults
${commonOptionsHelp}`;

const runHelp = `Usage: procview run [options]

Runs the FUSE server and the NRI plugin in one process.

Options:
  --mountpoint DIR    (default ${defaultMountpoint})
  --socket PATH       (default ${defaultNriSocket})
  --workers N         (default ${defaultWorkers})
  --backend B         kernel or fuse-native (default kernel; see 'procview fuse --help')
  --cpu-limit-by-quota
  --name NAME         (default ${defaultPluginName})
  --index NN          (default ${defaultPluginIndex})
  --default-policy P  all or opted-in (default all)
  --views LIST        views bound by default (see 'procview nri --help')
  --config FILE       plugin settings file (see 'procview nri --help')
${commonOptionsHelp}`;

const helpOf = { fuse: fuseHelp, nri: nriHelp, run: runHelp } as const;

const optionSpecs = {
  mountpoint: { type: "string" },
  "state-dir": { type: "string" },
  "log-level": { type: "string" },
  workers: { type: "string" },
  backend: { type: "string" },
  socket: { type: "string" },
  name: { type: "string" },
  index: { type: "string" },
  "default-policy": { type: "string" },
  views: { type: "string" },
  config: { type: "string" },
  "cpu-limit-by-quota": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const optionsOf: Record<keyof typeof helpOf, ReadonlySet<string>> = {
  fuse: new Set(["mountpoint", "state-dir", "log-level", "workers", "backend", "cpu-limit-by-quota", "help"]),
  nri: new Set(["mountpoint", "state-dir", "log-level", "socket", "name", "index", "default-policy", "views", "cpu-limit-by-quota", "config", "help"]),
  run: new Set(Object.keys(optionSpecs)),
};

export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  runtime: Runtime = "node",
): Command {
  const [subcommand, ...rest] = argv;
  if (subcommand === undefined || subcommand === "--help" || subcommand === "-h" || subcommand === "help") {
    return { kind: "help", text: mainHelp };
  }
  if (!(subcommand in helpOf)) throw new UsageError(`unknown command '${subcommand}'\n\n${mainHelp}`);
  const kind = subcommand as keyof typeof helpOf;

  let values: Partial<Record<keyof typeof optionSpecs, string | boolean>>;
  try {
    ({ values } = parseArgs({ args: [...rest], options: optionSpecs, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${helpOf[kind]}`);
  }
  for (const key of Object.keys(values)) {
    if (!optionsOf[kind].has(key)) throw new UsageError(`'procview ${kind}' takes no --${key}\n\n${helpOf[kind]}`);
  }
  if (values.help) return { kind: "help", text: helpOf[kind] };

  const text = (key: keyof typeof optionSpecs): string | undefined => values[key] as string | undefined;
  const logLevel = text("log-level") ?? "info";
  if (!isLogLevel(logLevel)) throw new UsageError(`--log-level must be debug, info, warn or error, not '${logLevel}'`);

  const mountpoint = absolute("--mountpoint", text("mountpoint") ?? defaultMountpoint);
  const stateDir = absolute("--state-dir", text("state-dir") ?? defaultStateDir);
  const fuse = (): FuseSettings => ({
    mountpoint,
    stateDir,
    workers: workerCount(text("workers")),
    backend: fuseBackend(text("backend"), text("workers"), runtime),
    cpuLimitByQuota: values["cpu-limit-by-quota"] === true,
  });
  const nri = (): NriSettings => nriSettings(mountpoint, stateDir, text, values["cpu-limit-by-quota"] === true, env);

  switch (kind) {
    case "fuse":
      return { kind, logLevel, fuse: fuse() };
    case "nri":
      return { kind, logLevel, nri: nri() };
    case "run":
      return { kind, logLevel, fuse: fuse(), nri: nri() };
  }
}

function nriSettings(
  mountpoint: string,
  stateDir: string,
  text: (key: keyof typeof optionSpecs) => string | undefined,
  cpuLimitByQuota: boolean,
  env: Readonly<Record<string, string | undefined>>,
): NriSettings {
  // A pre-launched plugin gets its identity and socket from the runtime, not from flags.
  const inherited = env.NRI_PLUGIN_SOCKET;
  const name = env.NRI_PLUGIN_NAME || text("name") || defaultPluginName;
  const index = env.NRI_PLUGIN_IDX || text("index") || defaultPluginIndex;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new UsageError(`plugin name '${name}' has characters NRI does not accept`);
  if (!/^[0-9]{2}$/.test(index)) throw new UsageError(`plugin index must be two digits (00-99), not '${index}'`);
  const flagSettings = pluginFlagSettings(text, cpuLimitByQuota);
  const configPath = text("config");
  const configFile = configPath === undefined ? {} : { configFile: absolute("--config", configPath) };
  if (inherited !== undefined && inherited !== "") {
    const fd = Number(inherited);
    if (!Number.isInteger(fd) || fd < 0) throw new UsageError(`NRI_PLUGIN_SOCKET must be a file descriptor number, not '${inherited}'`);
    if (text("socket") !== undefined) throw new UsageError("--socket conflicts with NRI_PLUGIN_SOCKET (pre-launched mode)");
    return { mountpoint, stateDir, name, index, flagSettings, ...configFile, socketFd: fd };
  }
  return { mountpoint, stateDir, name, index, flagSettings, ...configFile, socketPath: absolute("--socket", text("socket") ?? defaultNriSocket) };
}

/** Only the settings a flag names: the rest come from the config file, the runtime's config or the defaults. */
function pluginFlagSettings(text: (key: keyof typeof optionSpecs) => string | undefined, cpuLimitByQuota: boolean): PluginSettingsLayer {
  const settings: PluginSettingsLayer = {};
  const defaultPolicy = text("default-policy");
  if (defaultPolicy !== undefined) {
    if (!isDefaultPolicy(defaultPolicy)) throw new UsageError(`--default-policy must be all or opted-in, not '${defaultPolicy}'`);
    settings.defaultPolicy = defaultPolicy;
  }
  const views = text("views");
  if (views !== undefined) {
    try {
      settings.views = parseViewList(views);
    } catch (err) {
      throw new UsageError(`--views: ${(err as Error).message}`);
    }
  }
  if (cpuLimitByQuota) settings.cpuByQuota = true;
  return settings;
}

function absolute(flag: string, path: string): string {
  if (!path.startsWith("/")) throw new UsageError(`${flag} must be an absolute path, not '${path}'`);
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

function fuseBackend(value: string | undefined, workers: string | undefined, runtime: Runtime): FuseBackend {
  if (value === undefined || value === "kernel") return "kernel";
  if (value !== "fuse-native") throw new UsageError(`--backend must be kernel or fuse-native, not '${value}'`);
  if (runtime === "deno") throw new UsageError("--backend fuse-native needs Node: fuse-native's native addon aborts under Deno. Run procview with node, or use --backend kernel");
  if (workers !== undefined) throw new UsageError("--workers applies to --backend kernel only: fuse-native answers every request on the main thread");
  return "fuse-native";
}

function workerCount(value: string | undefined): number {
  if (value === undefined) return defaultWorkers;
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new UsageError(`--workers must be a whole number from 1 to 64, not '${value}'`);
  return count;
}

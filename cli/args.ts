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
  /** Take the live server's /dev/fuse connection over instead of mounting anew. */
  replace: boolean;
  /** Once a successor has taken over: exit, or wait idle for SIGTERM (a pod's container would be restarted). */
  onReplaced: OnReplaced;
}

export type OnReplaced = "exit" | "wait";

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
  /** --replace: the active plugin of the state dir steps down for this one. */
  replace?: boolean;
}

/** --metrics-address HOST:PORT: where /metrics, /healthz and /readyz are served. */
export interface MetricsAddress {
  host: string;
  port: number;
}

/** Only present when --metrics-address was given: metrics are off by default. */
interface MetricsOption {
  metricsAddress?: MetricsAddress;
}

export type Command =
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "status"; stateDir: string; json: boolean }
  | ({ kind: "fuse"; logLevel: LogLevel; fuse: FuseSettings } & MetricsOption)
  | ({ kind: "nri"; logLevel: LogLevel; nri: NriSettings } & MetricsOption)
  | ({ kind: "run"; logLevel: LogLevel; fuse: FuseSettings; nri: NriSettings } & MetricsOption);

export class UsageError extends Error {}

const mainHelp = `procview: containers that see their own limits in /proc

Usage: procview <command> [options]
       procview --version

Commands:
  fuse     serve the FUSE filesystem of per-container /proc views
  nri      run the NRI plugin that binds those views into containers
  run      both in one process
  status   report whether the FUSE server and the plugin of a state dir are healthy

Run 'procview <command> --help' for a command's options.
`;

const metricsOptionHelp = `  --metrics-address HOST:PORT
                      serve Prometheus /metrics, /healthz and /readyz there (default off;
                      e.g. 127.0.0.1:9464)
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
  --workers N         request-serving worker threads; 0 serves on the main thread
                      (default ${defaultWorkers} here: 0 on up to 2 CPUs, else one per CPU
                      up to 8; kernel backend only)
  --backend B         kernel (default): the FUSE protocol spoken from TypeScript;
                      fuse-native: libfuse through the fuse-native package, Node only, and
                      containers/<id>/… only: it cannot tell who reads, so the
                      LXCFS-compatible reader-pid layout is unavailable
  --cpu-limit-by-quota
                      show ceil(quota/period) CPUs when a CPU quota is set, not the whole cpuset
  --replace           take the /dev/fuse connection of the live server on MOUNTPOINT over
                      (planned restart, upgrade): readers wait a moment, none fails, the
                      old server exits without unmounting; no live server: mount anew
  --on-replaced WHAT  when a successor takes over: exit (default), or wait idle for
                      SIGTERM (in a Kubernetes pod, whose container would be restarted)
${metricsOptionHelp}${commonOptionsHelp}`;

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
  --replace           take over from the active plugin of this state dir (one plugin is
                      active per state dir; without it, a second one waits for the first to exit)
${metricsOptionHelp}${commonOptionsHelp}`;

const runHelp = `Usage: procview run [options]

Runs the FUSE server and the NRI plugin in one process.

Options:
  --mountpoint DIR    (default ${defaultMountpoint})
  --socket PATH       (default ${defaultNriSocket})
  --workers N         (default ${defaultWorkers})
  --backend B         kernel or fuse-native (default kernel; see 'procview fuse --help')
  --replace           take the live FUSE server's connection over (see 'procview fuse
                      --help'); the NRI plugin starts once the old process has exited
  --cpu-limit-by-quota
  --name NAME         (default ${defaultPluginName})
  --index NN          (default ${defaultPluginIndex})
  --default-policy P  all or opted-in (default all)
  --views LIST        views bound by default (see 'procview nri --help')
  --config FILE       plugin settings file (see 'procview nri --help')
${metricsOptionHelp}${commonOptionsHelp}`;

const statusHelp = `Usage: procview status [options]

Reports the FUSE server (pid, mountpoint, whether the mount answers), the NRI plugin
(connected, runtime and version), the containers recorded and those whose views are not
served. Exits 0 only when everything is healthy, 1 otherwise.

Options:
  --state-dir DIR     the state dir of the procview to check (default ${defaultStateDir})
  --json              one JSON object instead of text
  -h, --help          this text
`;

const helpOf = { fuse: fuseHelp, nri: nriHelp, run: runHelp, status: statusHelp } as const;

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
  "metrics-address": { type: "string" },
  json: { type: "boolean" },
  replace: { type: "boolean" },
  "on-replaced": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const optionsOf: Record<keyof typeof helpOf, ReadonlySet<string>> = {
  fuse: new Set(["mountpoint", "state-dir", "log-level", "workers", "backend", "cpu-limit-by-quota", "replace", "on-replaced", "metrics-address", "help"]),
  nri: new Set([
    "mountpoint", "state-dir", "log-level", "socket", "name", "index", "default-policy", "views", "cpu-limit-by-quota", "config", "replace", "metrics-address", "help",
  ]),
  // A `run` process hands its plugin over by exiting: it never waits once replaced.
  run: new Set(Object.keys(optionSpecs).filter((key) => key !== "json" && key !== "on-replaced")),
  status: new Set(["state-dir", "json", "help"]),
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
  if (subcommand === "--version" || subcommand === "-V" || subcommand === "version") return { kind: "version" };
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
  if (kind === "status") return { kind, stateDir, json: values.json === true };
  const metricsAddress = text("metrics-address");
  const metrics: MetricsOption = metricsAddress === undefined ? {} : { metricsAddress: parseMetricsAddress(metricsAddress) };
  const fuse = (): FuseSettings => ({
    mountpoint,
    stateDir,
    workers: workerCount(text("workers")),
    backend: fuseBackend(text("backend"), text("workers"), runtime),
    cpuLimitByQuota: values["cpu-limit-by-quota"] === true,
    ...replacement(values.replace === true, text("on-replaced"), text("backend")),
  });
  const nri = (): NriSettings => ({
    ...nriSettings(mountpoint, stateDir, text, values["cpu-limit-by-quota"] === true, env),
    ...(values.replace === true && { replace: true }),
  });

  switch (kind) {
    case "fuse":
      return { kind, logLevel, fuse: fuse(), ...metrics };
    case "nri":
      return { kind, logLevel, nri: nri(), ...metrics };
    case "run":
      return { kind, logLevel, fuse: fuse(), nri: nri(), ...metrics };
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

/** HOST:PORT, [IPv6]:PORT or :PORT (all addresses); port 1-65535. */
export function parseMetricsAddress(value: string): MetricsAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s\[\]]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new UsageError(`--metrics-address must be HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464, :9464), not '${value}'`);
  }
  const host = match[1] ?? (match[2] || "0.0.0.0");
  return { host, port };
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

function replacement(replace: boolean, onReplaced: string | undefined, backend: string | undefined): Pick<FuseSettings, "replace" | "onReplaced"> {
  if (onReplaced !== undefined && onReplaced !== "exit" && onReplaced !== "wait") throw new UsageError(`--on-replaced must be exit or wait, not '${onReplaced}'`);
  if (replace && backend === "fuse-native") throw new UsageError("--replace needs --backend kernel: libfuse (fuse-native) keeps the /dev/fuse fd to itself");
  return { replace, onReplaced: onReplaced ?? "exit" };
}

function workerCount(value: string | undefined): number {
  if (value === undefined) return defaultWorkers;
  const count = Number(value);
  if (!Number.isInteger(count) || count < 0 || count > 64) throw new UsageError(`--workers must be a whole number from 0 to 64, not '${value}'`);
  return count;
}

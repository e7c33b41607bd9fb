/**
 * runc's command line as procview-runc needs to read it: the global flags (passed through
 * untouched, but --root, --log, --log-format, --debug and --systemd-cgroup matter to us),
 * the command, and for the commands procview acts on (create, run, delete) the container
 * id and bundle. Pure, and cheap: it runs on every runc call.
 *
 * runc parses flags the Go way (urfave/cli v1): `-flag` or `--flag`, a value as
 * `--flag=value` or the next argument, flags stop at the first argument that is not one.
 * A flag we do not know cannot be told apart from its value, so such a command line is
 * reported as not understood and procview-runc hands it to runc unchanged.
 */

export type RuncLogFormat = "text" | "json";

export interface RuncGlobals {
  root?: string;
  /** --log: where runc (and procview-runc) write their log; stderr when absent. */
  log?: string;
  logFormat: RuncLogFormat;
  debug: boolean;
  systemdCgroup: boolean;
}

/** The commands procview-runc acts on; everything else is passed through. */
export type ActedCommand = "create" | "run" | "delete";

export type RuncInvocation =
  | { kind: "pass-through" }
  | {
      kind: ActedCommand;
      globals: RuncGlobals;
      id: string;
      /** --bundle/-b; runc's default is the working directory. */
      bundle?: string;
      /** run: --detach/-d (runc leaves the container running and returns). */
      detach: boolean;
      /** run: --keep (runc keeps the container after it exits, for a later delete). */
      keep: boolean;
      /** create/run: --preserve-fds N: fds 3 … 3+N-1 go to the container. */
      preserveFds: number;
    };

interface FlagTable {
  /** Flag names (without dashes) that take a value. */
  withValue: readonly string[];
  /** Flag names that take none (a Go bool flag may still be written --flag=true). */
  boolean: readonly string[];
}

const globalFlags: FlagTable = {
  withValue: ["log", "log-format", "root", "criu", "rootless"],
  boolean: ["debug", "systemd-cgroup", "help", "h", "version", "v"],
};

const createFlags: FlagTable = {
  withValue: ["bundle", "b", "console-socket", "pid-file", "preserve-fds"],
  boolean: ["no-pivot", "no-new-keyring", "help", "h"],
};

const commandFlags: Record<ActedCommand, FlagTable> = {
  create: createFlags,
  run: { withValue: createFlags.withValue, boolean: [...createFlags.boolean, "detach", "d", "keep", "no-subreaper"] },
  delete: { withValue: [], boolean: ["force", "f", "help", "h"] },
};

interface ParsedFlags {
  values: Map<string, string>;
  /** Index of the first argument after the flags. */
  rest: number;
}

/** Flags from `start` on, or undefined when one is unknown or lacks its value. */
function parseFlags(argv: readonly string[], start: number, table: FlagTable): ParsedFlags | undefined {
  const values = new Map<string, string>();
  let i = start;
  while (i < argv.length) {
    const arg = argv[i];
    if (arg === "--") return { values, rest: i + 1 };
    if (!arg.startsWith("-") || arg === "-") break;
    const body = arg.slice(arg.startsWith("--") ? 2 : 1);
    const equals = body.indexOf("=");
    const name = equals < 0 ? body : body.slice(0, equals);
    if (table.withValue.includes(name)) {
      if (equals >= 0) {
        values.set(name, body.slice(equals + 1));
      } else {
        if (i + 1 >= argv.length) return undefined;
        values.set(name, argv[++i]);
      }
    } else if (table.boolean.includes(name)) {
      values.set(name, equals < 0 ? "true" : body.slice(equals + 1));
    } else {
      return undefined;
    }
    i++;
  }
  return { values, rest: i };
}

const isTrue = (value: string | undefined) => value !== undefined && value !== "false" && value !== "0";

function isActed(command: string | undefined): command is ActedCommand {
  return command === "create" || command === "run" || command === "delete";
}

/** What procview-runc should do with runc's arguments (argv without the program name). */
export function parseRuncArgs(argv: readonly string[]): RuncInvocation {
  const global = parseFlags(argv, 0, globalFlags);
  if (global === undefined) return { kind: "pass-through" };
  const command = argv[global.rest];
  if (!isActed(command)) return { kind: "pass-through" };
  const own = parseFlags(argv, global.rest + 1, commandFlags[command]);
  if (own === undefined || isTrue(own.values.get("help") ?? own.values.get("h"))) return { kind: "pass-through" };
  const id = argv[own.rest];
  if (id === undefined || id === "") return { kind: "pass-through" };
  const format = global.values.get("log-format");
  const preserveFds = Number(own.values.get("preserve-fds") ?? "0");
  return {
    kind: command,
    globals: {
      root: global.values.get("root"),
      log: global.values.get("log"),
      logFormat: format === "json" ? "json" : "text",
      debug: isTrue(global.values.get("debug")),
      systemdCgroup: isTrue(global.values.get("systemd-cgroup")),
    },
    id,
    bundle: own.values.get("bundle") ?? own.values.get("b"),
    detach: isTrue(own.values.get("detach") ?? own.values.get("d")),
    keep: isTrue(own.values.get("keep")),
    preserveFds: Number.isInteger(preserveFds) && preserveFds > 0 ? preserveFds : 0,
  };
}

/**
 * Structured logging: one JSON object per line on stderr, so journald, kubectl logs
 * and the pre-launched plugin's log file all carry the same machine-readable records.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every record (e.g. the component or a container id). */
  child(fields: LogFields): Logger;
}

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(value: string): value is LogLevel {
  return value in levelRank;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where each finished line goes; stderr by default. */
  write?: (line: string) => void;
  fields?: LogFields;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = levelRank[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const make = (base: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (levelRank[level] < threshold) return;
      const record = { time: now().toISOString(), level, msg, ...base, ...fields };
      write(JSON.stringify(record, errorReplacer) + "\n");
    };
    return {
      debug: (msg, fields) => emit("debug", msg, fields),
      info: (msg, fields) => emit("info", msg, fields),
      warn: (msg, fields) => emit("warn", msg, fields),
      error: (msg, fields) => emit("error", msg, fields),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make(options.fields ?? {});
}

/** Errors serialise as `{}` by default; keep what an operator needs to act on. */
function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as NodeJS.ErrnoException).code;
    return code ? { message: value.message, code } : { message: value.message };
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

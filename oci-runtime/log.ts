/**
 * procview-runc's log lines, written where runc writes its own: the --log file in the
 * --log-format runc was given (containerd's shim passes `--log <bundle>/log.json
 * --log-format json` and quotes that file when a runtime call fails), else stderr.
 * Never stdout or stderr under a --log: for `create` those are the container's stdio.
 */

import { appendFileSync } from "node:fs";
import type { RuncGlobals } from "./args.ts";

/** runc's (logrus's) level names. */
export type RuncLogLevel = "debug" | "info" | "warning" | "error";

/** One line as runc writes it: JSON {"level","msg","time"}, or logrus's text format. */
export function runcLogLine(format: RuncGlobals["logFormat"], level: RuncLogLevel, msg: string, time: Date): string {
  if (format === "json") return JSON.stringify({ level, msg, time: time.toISOString() }) + "\n";
  return `time="${time.toISOString()}" level=${level} msg=${JSON.stringify(msg)}\n`;
}

export type RuncLog = (level: RuncLogLevel, msg: string) => void;

/** A log into runc's --log (or stderr); debug lines only under --debug, as runc does. */
export function runcLog(globals: RuncGlobals, now: () => Date = () => new Date()): RuncLog {
  return (level, msg) => {
    if (level === "debug" && !globals.debug) return;
    const line = runcLogLine(globals.logFormat, level, `procview: ${msg}`, now());
    try {
      if (globals.log === undefined) process.stderr.write(line);
      else appendFileSync(globals.log, line);
    } catch {
      // A log that cannot be written must not fail the container.
    }
  };
}

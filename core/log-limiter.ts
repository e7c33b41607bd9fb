/**
 * Rate limiting for warnings a peer can trigger at will (a frame on an unknown
 * multiplexer connection, an unexpected ttrpc message): one line per kind of event and
 * interval, plus a count of what was left out, so a flood costs the log a few lines
 * instead of one per frame while the operator still learns how many there were.
 */

import type { LogFields, Logger } from "./log.ts";

export interface LimitedLogger {
  /**
   * Logs `msg` now if no `msg` was logged in the last interval; else counts it. The count
   * rides on the next line logged, or on a summary at the interval's end if none comes.
   */
  warn(msg: string, fields?: LogFields): void;
}

export interface LimiterOptions {
  /** Default 10 s. */
  intervalMs?: number;
  now?: () => number;
}

/** Distinct messages tracked at once; the messages are our own constants, this only bounds a mistake. */
const maxTrackedMessages = 64;

interface Window {
  startedAt: number;
  suppressed: number;
  /** The fields of the last suppressed event, for the summary. */
  lastFields: LogFields | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export function limitedLogger(logger: Logger, options: LimiterOptions = {}): LimitedLogger {
  const intervalMs = options.intervalMs ?? 10_000;
  const now = options.now ?? Date.now;
  const windows = new Map<string, Window>();

  const summarize = (msg: string, window: Window): void => {
    window.timer = undefined;
    if (window.suppressed === 0) return;
    logger.warn(msg, { ...window.lastFields, suppressed: window.suppressed, intervalMs });
    window.suppressed = 0;
    window.lastFields = undefined;
  };

  return {
    warn(msg, fields) {
      const at = now();
      const window = windows.get(msg);
      if (window !== undefined && at - window.startedAt < intervalMs) {
        window.suppressed++;
        window.lastFields = fields;
        // The summary comes at the window's end even if the flood stops; unref'd so it never keeps a process alive.
        window.timer ??= setTimeout(() => summarize(msg, window), window.startedAt + intervalMs - at);
        (window.timer as { unref?: () => void }).unref?.();
        return;
      }
      // A new interval: this event's line also carries the count left out since the previous line.
      const suppressed = window?.suppressed ?? 0;
      clearTimeout(window?.timer);
      if (windows.size >= maxTrackedMessages && window === undefined) windows.delete(windows.keys().next().value!);
      windows.set(msg, { startedAt: at, suppressed: 0, lastFields: undefined, timer: undefined });
      logger.warn(msg, suppressed > 0 ? { ...fields, suppressed, intervalMs } : fields);
    },
  };
}

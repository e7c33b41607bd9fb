/**
 * /proc/loadavg for a container: the kernel's exponentially damped averages of its
 * runnable (R) and uninterruptible (D) threads, sampled every 5 seconds as the kernel does.
 */

import { clearInterval, setInterval } from "node:timers";
import type { TaskCounts } from "../host/task.ts";

/** The kernel's fixed-point constants (include/linux/sched/loadavg.h). */
const fshift = 11;
const fixed1 = 1 << fshift;
/** 1/exp(5s/1min), 1/exp(5s/5min), 1/exp(5s/15min) in fixed point. */
const exponents = [1884, 2014, 2037] as const;
export const sampleIntervalMs = 5000;

export type LoadAverages = readonly [number, number, number];

/** One damping step of the kernel's calc_load(), `active` being a thread count. */
export function calcLoad(load: number, exponent: number, active: number): number {
  const activeFixed = active * fixed1;
  let next = load * exponent + activeFixed * (fixed1 - exponent);
  if (activeFixed >= load) next += fixed1 - 1;
  return Math.floor(next / fixed1);
}

export function nextLoadAverages(averages: LoadAverages, active: number): LoadAverages {
  return [calcLoad(averages[0], exponents[0], active), calcLoad(averages[1], exponents[1], active), calcLoad(averages[2], exponents[2], active)];
}

/** The kernel's "%lu.%02lu" with its rounding offset of FIXED_1/200. */
function formatLoad(load: number): string {
  const rounded = load + Math.floor(fixed1 / 200);
  const whole = rounded >> fshift;
  const hundredths = ((rounded & (fixed1 - 1)) * 100) >> fshift;
  return `${whole}.${String(hundredths).padStart(2, "0")}`;
}

export function renderLoadavg(averages: LoadAverages, tasks: TaskCounts): string {
  return `${averages.map(formatLoad).join(" ")} ${tasks.running}/${tasks.total} ${tasks.lastPid}\n`;
}

interface Tracked {
  averages: LoadAverages;
  lastRead: number;
}

/**
 * Keeps the averages of every cgroup read recently. A cgroup starts being sampled at its
 * first read (at 0, like a freshly booted kernel) and is dropped after `forgetAfterMs`
 * without a read, or when it is gone. Each FUSE worker thread has its own tracker.
 */
export class LoadAverageTracker {
  private readonly tracked = new Map<string, Tracked>();
  private readonly countActive: (key: string) => number | undefined;
  private readonly forgetAfterMs: number;
  private readonly now: () => number;
  private timer: ReturnType<typeof setInterval> | undefined;

  /** `countActive` returns the R+D threads of the cgroup named by `key`, undefined when it is gone. */
  constructor(countActive: (key: string) => number | undefined, options: { forgetAfterMs?: number; now?: () => number } = {}) {
    this.countActive = countActive;
    this.forgetAfterMs = options.forgetAfterMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** The averages of `key`, which from now on is sampled; `active` is its current R+D count. */
  averagesOf(key: string, active: number): LoadAverages {
    let entry = this.tracked.get(key);
    if (entry === undefined) {
      entry = { averages: nextLoadAverages([0, 0, 0], active), lastRead: 0 };
      this.tracked.set(key, entry);
      this.startTimer();
    }
    entry.lastRead = this.now();
    return entry.averages;
  }

  /** One sampling round (the timer's work; tests call it directly). */
  sample(): void {
    const now = this.now();
    for (const [key, entry] of this.tracked) {
      const active = now - entry.lastRead > this.forgetAfterMs ? undefined : this.countSafely(key);
      if (active === undefined) this.tracked.delete(key);
      else entry.averages = nextLoadAverages(entry.averages, active);
    }
    if (this.tracked.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A failing count drops the cgroup rather than the worker: this runs on a timer, outside any request. */
  private countSafely(key: string): number | undefined {
    try {
      return this.countActive(key);
    } catch {
      return undefined;
    }
  }

  private startTimer(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.sample(), sampleIntervalMs);
    // Sampling must never keep a worker (or a test) alive on its own.
    this.timer.unref();
  }
}

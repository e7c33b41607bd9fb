/**
 * /proc/loadavg for a container: the kernel's exponentially damped averages of its
 * runnable (R) and uninterruptible (D) threads, sampled every 5 seconds as the kernel does.
 * The fixed-point math and the text; the shared table and the sampler that keep the
 * averages between reads are in ../loadavg-sampler.ts.
 */

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

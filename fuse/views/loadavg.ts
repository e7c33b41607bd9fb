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

/**
 * The averages live in shared memory so that every FUSE worker thread shows the same
 * numbers and a cgroup is sampled once per interval, whichever worker gets there first.
 * One slot per cgroup, found by open addressing on two 32-bit hashes of its key:
 *
 *   state, hashA, hashB, sampled interval, average[3], last read interval   (Int32 each)
 */
const slotInts = 8;
const empty = 0;
const ready = 1;
const claiming = 2;
const removed = 3;

/** Room for this many cgroups read within `forgetAfterMs` (at 32 bytes each). */
const defaultLoadAverageSlots = 4096;

/** The memory a tree's tracker uses; pass one to every worker's createTree to share it. */
export function createLoadAverageMemory(slots: number = defaultLoadAverageSlots): SharedArrayBuffer {
  return new SharedArrayBuffer(slots * slotInts * Int32Array.BYTES_PER_ELEMENT);
}

/**
 * Keeps the averages of every cgroup read recently. A cgroup starts at its first read (at
 * 0, like a freshly booted kernel, plus that read's sample) and is dropped after
 * `forgetAfterMs` without a read, or when it is gone.
 */
export class LoadAverageTracker {
  private readonly slots: Int32Array;
  private readonly slotCount: number;
  /** Slots this thread has read, with their keys: a thread can only sample cgroups it can name. */
  private readonly known = new Map<number, string>();
  private readonly countActive: (key: string) => number | undefined;
  private readonly forgetAfterIntervals: number;
  private readonly now: () => number;
  private timer: ReturnType<typeof setInterval> | undefined;

  /** `countActive` returns the R+D threads of the cgroup named by `key`, undefined when it is gone. */
  constructor(
    memory: SharedArrayBuffer,
    countActive: (key: string) => number | undefined,
    options: { forgetAfterMs?: number; now?: () => number } = {},
  ) {
    this.slots = new Int32Array(memory);
    this.slotCount = Math.floor(this.slots.length / slotInts);
    if (this.slotCount === 0) throw new Error("load average memory holds no slot");
    this.countActive = countActive;
    this.forgetAfterIntervals = Math.ceil((options.forgetAfterMs ?? 10 * 60_000) / sampleIntervalMs);
    this.now = options.now ?? Date.now;
  }

  /** The averages of `key`, which from now on is sampled; `active` is its current R+D count. */
  averagesOf(key: string, active: number): LoadAverages {
    const interval = this.interval();
    const [hashA, hashB] = hashKey(key);
    const slot = this.find(hashA, hashB) ?? this.claim(hashA, hashB, interval, nextLoadAverages([0, 0, 0], active));
    // A full table still answers: with the kernel's first step, untracked.
    if (slot === undefined) return nextLoadAverages([0, 0, 0], active);
    this.known.set(slot, key);
    this.startTimer();
    const base = slot * slotInts;
    Atomics.store(this.slots, base + 7, interval);
    return [Atomics.load(this.slots, base + 4), Atomics.load(this.slots, base + 5), Atomics.load(this.slots, base + 6)];
  }

  /** One sampling round over the cgroups this thread knows (the timer's work; tests call it directly). */
  sample(): void {
    const interval = this.interval();
    for (const [slot, key] of this.known) {
      const base = slot * slotInts;
      const [hashA, hashB] = hashKey(key);
      if (Atomics.load(this.slots, base) !== ready || this.slots[base + 1] !== hashA || this.slots[base + 2] !== hashB) {
        this.known.delete(slot);
        continue;
      }
      const sampled = Atomics.load(this.slots, base + 3);
      if (sampled >= interval) continue;
      // Only one thread wins each interval of each cgroup, so averages decay once per interval.
      if (Atomics.compareExchange(this.slots, base + 3, sampled, interval) !== sampled) continue;
      const idle = interval - Atomics.load(this.slots, base + 7) > this.forgetAfterIntervals;
      const active = idle ? undefined : this.countSafely(key);
      if (active === undefined) {
        Atomics.store(this.slots, base, removed);
        this.known.delete(slot);
        continue;
      }
      let averages: LoadAverages = [this.slots[base + 4], this.slots[base + 5], this.slots[base + 6]];
      // Intervals nobody sampled (a stalled worker) decay with the count seen now, as the kernel catches up.
      for (let step = 0; step < Math.min(interval - sampled, 3 * this.forgetAfterIntervals); step++) averages = nextLoadAverages(averages, active);
      averages.forEach((value, i) => Atomics.store(this.slots, base + 4 + i, value));
    }
    if (this.known.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private interval(): number {
    return Math.floor(this.now() / sampleIntervalMs);
  }

  private find(hashA: number, hashB: number): number | undefined {
    for (let probe = 0; probe < this.slotCount; probe++) {
      const slot = (hashA + probe) % this.slotCount;
      const base = slot * slotInts;
      const state = Atomics.load(this.slots, base);
      if (state === empty) return undefined;
      if (state === ready && this.slots[base + 1] === hashA && this.slots[base + 2] === hashB) return slot;
    }
    return undefined;
  }

  /** Takes the first free slot of the probe sequence. Two threads claiming one key at once leave a duplicate that is never read again and is forgotten. */
  private claim(hashA: number, hashB: number, interval: number, averages: LoadAverages): number | undefined {
    for (let probe = 0; probe < this.slotCount; probe++) {
      const slot = (hashA + probe) % this.slotCount;
      const base = slot * slotInts;
      const state = Atomics.load(this.slots, base);
      if (state !== empty && state !== removed) continue;
      if (Atomics.compareExchange(this.slots, base, state, claiming) !== state) continue;
      this.slots[base + 1] = hashA;
      this.slots[base + 2] = hashB;
      Atomics.store(this.slots, base + 3, interval);
      averages.forEach((value, i) => Atomics.store(this.slots, base + 4 + i, value));
      Atomics.store(this.slots, base + 7, interval);
      Atomics.store(this.slots, base, ready);
      return slot;
    }
    return undefined;
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

/** Two independent 32-bit FNV-1a hashes (non-negative), so two keys sharing a slot are told apart. */
function hashKey(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193);
    b = Math.imul(b ^ code, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 1, b >>> 1];
}

/**
 * The load averages behind /proc/loadavg between reads: reads only look the cgroup up in a
 * table in shared memory; one sampler (a timer on a thread that never blocks on /dev/fuse:
 * the FUSE worker threads do) walks each tracked cgroup's threads once per interval and
 * steps its averages (render/loadavg.ts) for every worker.
 */

import { clearTimeout, setTimeout } from "node:timers";
import { hashKey } from "../core/key-hash.ts";
import type { TaskCounts } from "./host/task.ts";
import { nextLoadAverages, sampleIntervalMs, type LoadAverages } from "./render/loadavg.ts";

/**
 * One slot per cgroup, found by open addressing on two 32-bit hashes of its key (the
 * cgroup's path), which the slot also holds so the sampler can walk the cgroup:
 *
 *   state, hashA, hashB, version, sampled interval, average[3], last read interval,
 *   running, total, last pid, blocked, key length (Int32 each), then the key's UTF-8 bytes.
 *
 * Only the sampler changes a ready slot; `version` is odd while it does (a seqlock), so a
 * reader never mixes two samples.
 */
const S_STATE = 0;
const S_HASH_A = 1;
const S_HASH_B = 2;
const S_VERSION = 3;
const S_SAMPLED = 4;
const S_AVERAGES = 5;
const S_LAST_READ = 8;
const S_RUNNING = 9;
const S_TOTAL = 10;
const S_LAST_PID = 11;
const S_BLOCKED = 12;
const S_KEY_LENGTH = 13;
const headerInts = 16;
/** Longer than any runtime's cgroup path (a systemd-driver Kubernetes container's is ~170 bytes). */
export const maxKeyBytes = 448;
const slotInts = headerInts + maxKeyBytes / 4;

const empty = 0;
const ready = 1;
const claiming = 2;
const removed = 3;

/** Room for this many cgroups tracked at once (at 512 bytes each, committed as slots are used). */
const defaultLoadAverageSlots = 4096;

/** The table's memory; make it once (main thread) and hand it to every worker's tree and to the sampler. */
export function createLoadAverageMemory(slots: number = defaultLoadAverageSlots): SharedArrayBuffer {
  return new SharedArrayBuffer(slots * slotInts * Int32Array.BYTES_PER_ELEMENT);
}

/** What /proc/loadavg shows for a tracked cgroup: its averages and its tasks as last sampled. */
export interface LoadEntry {
  averages: LoadAverages;
  tasks: TaskCounts;
}

export interface SamplingRound {
  /** The cgroup's tasks now; undefined when the cgroup is gone. */
  countTasks(key: string): TaskCounts | undefined;
  /** Cgroups to track whether read or not (the containers the NRI plugin recorded). */
  recordedKeys: Iterable<string>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The load averages of every tracked cgroup. A cgroup is tracked from its first read (or
 * from when the plugin recorded it) with idle averages, like a freshly booted kernel; the
 * sampler then steps them every 5 s. It is dropped when it is gone, or after
 * `forgetAfterMs` without a read unless it is recorded.
 */
export class LoadAverageTable {
  readonly #slots: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #slotCount: number;
  readonly #now: () => number;
  readonly #forgetAfterIntervals: number;

  constructor(memory: SharedArrayBuffer, options: { now?: () => number; forgetAfterMs?: number } = {}) {
    this.#slots = new Int32Array(memory);
    this.#bytes = new Uint8Array(memory);
    this.#slotCount = Math.floor(this.#slots.length / slotInts);
    if (this.#slotCount === 0) throw new Error("load average memory holds no slot");
    this.#now = options.now ?? Date.now;
    this.#forgetAfterIntervals = Math.ceil((options.forgetAfterMs ?? 10 * 60_000) / sampleIntervalMs);
  }

  /** The cgroup's entry as last sampled, undefined when it is not tracked. Counts as a read. */
  lookup(key: string): LoadEntry | undefined {
    const [hashA, hashB] = hashKey(key);
    const slot = this.#find(hashA, hashB);
    if (slot === undefined) return undefined;
    const base = slot * slotInts;
    Atomics.store(this.#slots, base + S_LAST_READ, this.#interval());
    // A reader that keeps meeting the sampler mid-write (it cannot: a write is a few stores) still ends.
    for (let tries = 0; ; tries++) {
      const before = Atomics.load(this.#slots, base + S_VERSION);
      const entry = this.#entryAt(base);
      if ((before % 2 === 0 && Atomics.load(this.#slots, base + S_VERSION) === before) || tries > 100) return entry;
    }
  }

  /**
   * Starts tracking a cgroup with idle averages and `tasks` as seen now; false when the
   * table has no room (or the key is too long), so the caller answers untracked.
   */
  track(key: string, tasks: TaskCounts): boolean {
    const keyBytes = encoder.encode(key);
    if (keyBytes.byteLength > maxKeyBytes) return false;
    const [hashA, hashB] = hashKey(key);
    const interval = this.#interval();
    for (let probe = 0; probe < this.#slotCount; probe++) {
      const slot = (hashA + probe) % this.#slotCount;
      const base = slot * slotInts;
      const state = Atomics.load(this.#slots, base + S_STATE);
      if (state !== empty && state !== removed) continue;
      if (Atomics.compareExchange(this.#slots, base + S_STATE, state, claiming) !== state) continue;
      this.#slots[base + S_HASH_A] = hashA;
      this.#slots[base + S_HASH_B] = hashB;
      this.#slots[base + S_SAMPLED] = interval;
      this.#slots.fill(0, base + S_AVERAGES, base + S_AVERAGES + 3);
      this.#slots[base + S_LAST_READ] = interval;
      this.#storeTasks(base, tasks);
      this.#slots[base + S_KEY_LENGTH] = keyBytes.byteLength;
      this.#bytes.set(keyBytes, (base + headerInts) * 4);
      // Publishing the state last makes everything above visible to whoever sees it ready.
      Atomics.store(this.#slots, base + S_STATE, ready);
      return true;
    }
    return false;
  }

  /**
   * One sampling round (the sampler's work, on one thread only): tracks the recorded
   * cgroups, steps every tracked cgroup whose interval has passed, drops the gone and the forgotten.
   */
  sample(round: SamplingRound): void {
    const interval = this.#interval();
    const recorded = new Set<string>();
    for (const key of round.recordedKeys) {
      recorded.add(key);
      if (this.#find(...hashKey(key)) !== undefined) continue;
      const tasks = round.countTasks(key);
      if (tasks !== undefined) this.track(key, tasks);
    }
    const seen = new Set<string>();
    for (let slot = 0; slot < this.#slotCount; slot++) {
      const base = slot * slotInts;
      if (Atomics.load(this.#slots, base + S_STATE) !== ready) continue;
      const key = decoder.decode(this.#bytes.subarray((base + headerInts) * 4, (base + headerInts) * 4 + this.#slots[base + S_KEY_LENGTH]));
      const forgotten = interval - Atomics.load(this.#slots, base + S_LAST_READ) > this.#forgetAfterIntervals && !recorded.has(key);
      // Two threads tracking one key at once leave a duplicate nobody finds: drop it.
      if (seen.has(key) || forgotten) {
        Atomics.store(this.#slots, base + S_STATE, removed);
        continue;
      }
      seen.add(key);
      const sampled = this.#slots[base + S_SAMPLED];
      if (sampled >= interval) continue;
      const tasks = round.countTasks(key);
      if (tasks === undefined) {
        Atomics.store(this.#slots, base + S_STATE, removed);
        continue;
      }
      let averages = this.#entryAt(base).averages;
      // Intervals nobody sampled (a stalled thread, a suspended machine) decay with the count seen now, as the kernel catches up.
      for (let step = 0; step < Math.min(interval - sampled, 3 * this.#forgetAfterIntervals); step++) {
        averages = nextLoadAverages(averages, tasks.running + tasks.blocked);
      }
      Atomics.add(this.#slots, base + S_VERSION, 1);
      averages.forEach((value, i) => Atomics.store(this.#slots, base + S_AVERAGES + i, value));
      this.#storeTasks(base, tasks);
      Atomics.store(this.#slots, base + S_SAMPLED, interval);
      Atomics.add(this.#slots, base + S_VERSION, 1);
    }
  }

  /** Keys of the tracked cgroups. */
  trackedKeys(): string[] {
    const keys: string[] = [];
    for (let slot = 0; slot < this.#slotCount; slot++) {
      const base = slot * slotInts;
      if (Atomics.load(this.#slots, base + S_STATE) !== ready) continue;
      keys.push(decoder.decode(this.#bytes.slice((base + headerInts) * 4, (base + headerInts) * 4 + this.#slots[base + S_KEY_LENGTH])));
    }
    return keys;
  }

  #interval(): number {
    return Math.floor(this.#now() / sampleIntervalMs);
  }

  #entryAt(base: number): LoadEntry {
    const slots = this.#slots;
    return {
      averages: [Atomics.load(slots, base + S_AVERAGES), Atomics.load(slots, base + S_AVERAGES + 1), Atomics.load(slots, base + S_AVERAGES + 2)],
      tasks: {
        running: Atomics.load(slots, base + S_RUNNING),
        blocked: Atomics.load(slots, base + S_BLOCKED),
        total: Atomics.load(slots, base + S_TOTAL),
        lastPid: Atomics.load(slots, base + S_LAST_PID),
      },
    };
  }

  #storeTasks(base: number, tasks: TaskCounts): void {
    Atomics.store(this.#slots, base + S_RUNNING, tasks.running);
    Atomics.store(this.#slots, base + S_BLOCKED, tasks.blocked);
    Atomics.store(this.#slots, base + S_TOTAL, tasks.total);
    Atomics.store(this.#slots, base + S_LAST_PID, tasks.lastPid);
  }

  #find(hashA: number, hashB: number): number | undefined {
    for (let probe = 0; probe < this.#slotCount; probe++) {
      const slot = (hashA + probe) % this.#slotCount;
      const base = slot * slotInts;
      const state = Atomics.load(this.#slots, base + S_STATE);
      if (state === empty) return undefined;
      if (state === ready && this.#slots[base + S_HASH_A] === hashA && this.#slots[base + S_HASH_B] === hashB) return slot;
    }
    return undefined;
  }
}

export interface LoadAverageSampler {
  stop(): void;
}

/**
 * Runs `table.sample(round())` just after every 5 s boundary, on the calling thread's
 * event loop, which must not block (the main thread of `procview fuse`). A round that
 * throws is logged through `onError` and the next one runs as usual.
 */
export function startLoadAverageSampler(table: LoadAverageTable, round: () => SamplingRound, onError: (err: unknown) => void): LoadAverageSampler {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const schedule = (): void => {
    if (stopped) return;
    // Aligned to the boundaries the intervals are numbered by, so each tick lands in a new one.
    timer = setTimeout(tick, sampleIntervalMs - (Date.now() % sampleIntervalMs) + 50);
    // Sampling never keeps a process alive on its own.
    timer.unref();
  };
  const tick = (): void => {
    try {
      table.sample(round());
    } catch (err) {
      onError(err);
    }
    schedule();
  };
  tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

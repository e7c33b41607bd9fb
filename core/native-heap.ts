/**
 * Giving the native heap's free pages back to the system. Node's buffers, V8's compiler
 * zones and each thread's own native allocations come from glibc's malloc, which gives
 * every thread that allocates an arena of its own and hands back to the system only the
 * free end of one: what is freed below a live allocation stays resident. A FUSE server's
 * serving threads allocate and free at every request, so their arenas stay near their
 * peak. malloc_trim(0) gives every arena's wholly free pages back (MADV_DONTNEED); the
 * next allocations there fault them in again.
 */

import { readFileSync } from "node:fs";
import { exposedCollection } from "./heap-collection.ts";
import type { Logger } from "./log.ts";
import { loggedMiB, residentKiB } from "./startup-pages.ts";
import { syscalls } from "./syscalls.ts";

/** What serving freed goes back within seconds; a trim takes 1-3 ms (measured under load), on the main thread. */
export const nativeHeapTrimIntervalMs = 5_000;

/** Trims the native heap now, logging the RSS before and after, then every nativeHeapTrimIntervalMs without a word. */
export function startNativeHeapTrimming(logger: Logger): void {
  const rssMiB = (): number => loggedMiB(residentKiB(readFileSync("/proc/self/status", "utf8")).rss);
  const before = rssMiB();
  syscalls().mallocTrim();
  logger.info("free native heap given back", { rssMiB: [before, rssMiB()] });
  // The main thread's own V8 collection first (heap-collection.ts): what it frees goes back at this trim.
  const collect = exposedCollection();
  setInterval(() => {
    collect?.();
    syscalls().mallocTrim();
  }, nativeHeapTrimIntervalMs).unref();
}

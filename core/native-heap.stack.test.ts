/**
 * malloc_trim through the real libc (syscalls.ts) gives back the pages a process freed
 * below a live allocation, which free() alone keeps resident. In a child Node with
 * --expose-gc, so that the freed buffers are freed when the test says so.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

const syscallsModule = new URL("./syscalls.ts", import.meta.url).href;

/** 64 MiB of 8 KiB buffers, one in 64 kept (so no free range reaches the heap's end), the rest freed; then a trim. */
const child = `
import { readFileSync } from "node:fs";
import { syscalls } from ${JSON.stringify(syscallsModule)};
const anonKiB = () => Number(/^RssAnon:\\s+(\\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))[1]);
let buffers = Array.from({ length: 8192 }, () => Buffer.allocUnsafeSlow(8192).fill(1));
const kept = buffers.filter((_, index) => index % 64 === 63);
const allocated = anonKiB();
buffers = undefined;
for (let round = 0; round < 3; round++) {
  globalThis.gc();
  await new Promise((resolve) => setTimeout(resolve, 50));
}
const freed = anonKiB();
const gaveBack = syscalls().mallocTrim();
process.stdout.write(JSON.stringify({ allocated, freed, trimmed: anonKiB(), gaveBack, kept: kept.length }));
`;

test("malloc_trim gives back the freed pages that free() left resident", () => {
  const output = execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "--eval", child], { encoding: "utf8", timeout: 60_000 });
  const { allocated, freed, trimmed, gaveBack } = JSON.parse(output) as Record<string, number | boolean>;
  const report = `anonymous RSS: ${allocated} KiB allocated, ${freed} KiB freed, ${trimmed} KiB trimmed`;
  assert.equal(gaveBack, true, report);
  assert.ok((freed as number) > (allocated as number) - 16 * 1024, `free() kept most of the 64 MiB resident: ${report}`);
  assert.ok((trimmed as number) < (freed as number) - 48 * 1024, `the trim gave back at least 48 of the 64 MiB: ${report}`);
});

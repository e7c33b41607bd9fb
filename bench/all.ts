/**
 * `npm run bench [-- meminfo options]`: every benchmark in turn, each in its own process
 * (each mounts and cleans up its own FUSE server): the meminfo read benchmark, which
 * takes the arguments, then the procview-runc call overhead.
 */

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const benchmarks: Array<{ script: string; args: string[] }> = [
  { script: "meminfo.ts", args: process.argv.slice(2) },
  { script: "procview-runc.ts", args: [] },
];

let failed = false;
for (const { script, args } of benchmarks) {
  const result = spawnSync(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args], { stdio: "inherit" });
  if (result.status !== 0) {
    process.stderr.write(`bench/${script} failed (${result.status ?? result.signal})\n`);
    failed = true;
  }
}
process.exitCode = failed ? 1 : 0;

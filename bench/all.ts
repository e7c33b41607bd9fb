/**
 * `npm run bench [-- --parts a,b] [-- --quick]`: the benchmarks in turn, each in its own
 * process (each mounts and cleans up what it uses). A part is a script and its default
 * arguments; add one to `parts` to extend the bench. --quick runs each with fewer reads.
 */

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

interface BenchPart {
  name: string;
  script: string;
  /** What it measures, for --help. */
  about: string;
  args: string[];
  quickArgs: string[];
}

const parts: BenchPart[] = [
  { name: "views", script: "views.ts", about: "every view, both layouts, vs LXCFS and procfs at 1, 8 and nproc readers", args: [], quickArgs: ["--reads", "600", "--rounds", "2"] },
  { name: "threads", script: "threads.ts", about: "stat/loadavg/uptime with 1 vs 1,000 tasks in the container", args: [], quickArgs: ["--reads", "1000"] },
  { name: "containers", script: "containers.ts", about: "per-read cost with 1 vs 1,000 recorded containers, RSS under lookup churn", args: [], quickArgs: ["--reads", "1500"] },
  { name: "memory", script: "memory.ts", about: "FUSE server RSS at the default and per extra serving thread", args: [], quickArgs: ["--reads", "100", "--busy-seconds", "5"] },
  { name: "nri", script: "nri.ts", about: "NRI plugin's added CreateContainer latency, real private containerd", args: [], quickArgs: ["--containers", "20", "--block", "10"] },
  { name: "transport", script: "transport.ts", about: "the FUSE transport alone: /dev/fuse vs io_uring per CPU, vs LXCFS", args: [], quickArgs: ["--reads", "1500", "--rounds", "2"] },
  { name: "runc", script: "procview-runc.ts", about: "what procview-runc adds to runc's calls (pass-through, create, delete)", args: [], quickArgs: [] },
];

const usage = `Usage: npm run bench [-- --parts ${parts.map((part) => part.name).join(",")}] [--quick]
${parts.map((part) => `  ${part.name.padEnd(11)} ${part.about} (bench/${part.script})`).join("\n")}`;

const { values } = parseArgs({ options: { parts: { type: "string" }, quick: { type: "boolean" }, help: { type: "boolean", short: "h" } }, strict: true });
if (values.help) {
  process.stdout.write(usage + "\n");
  process.exit(0);
}
const chosen = values.parts === undefined ? parts.map((part) => part.name) : values.parts.split(",");
const unknown = chosen.filter((name) => !parts.some((part) => part.name === name));
if (unknown.length > 0) {
  process.stderr.write(`unknown bench part(s) ${unknown.join(", ")}\n${usage}\n`);
  process.exit(2);
}

let failed = false;
for (const part of parts.filter((candidate) => chosen.includes(candidate.name))) {
  process.stdout.write(`\n=== ${part.name}: ${part.about}\n`);
  const started = Date.now();
  const args = values.quick ? part.quickArgs : part.args;
  const result = spawnSync(process.execPath, [fileURLToPath(new URL(part.script, import.meta.url)), ...args], { stdio: "inherit" });
  if (result.status !== 0) {
    process.stderr.write(`bench/${part.script} failed (${result.status ?? result.signal})\n`);
    failed = true;
  }
  process.stdout.write(`(${part.name}: ${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
}
process.exitCode = failed ? 1 : 0;

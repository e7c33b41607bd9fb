/**
 * `node bench/procview-runc.ts [--runs N]`: what procview-runc adds to runc's calls.
 * Each operation N times, alternating runc and procview-runc so machine load hits both:
 *   - a pass-through command (`state` of a running container: what a shim calls most),
 *   - `create` of a container procview gives views (decision, record, config.json edit),
 *   - `create` of a container whose annotation disables procview (the decision alone),
 *   - `delete --force`.
 * procview-runc both ways: the Node launcher (bin/procview-runc.js) and the single
 * executable invoked as procview-runc (built here by scripts/build.ts, or --executable FILE).
 * Real runc (Debian's 1.1.5) and the real FUSE server; `node -e 0` shows Node's own start.
 * Wall time per call, and CPU per call (the commands' user + system time, which a busy
 * machine disturbs less).
 * Needs root and /dev/fuse. Cleans up its containers, cgroups and mount.
 */

import { execFileSync } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startProcviewFuse, type ProcviewFuse } from "../integration/procview-process.ts";
import { prepareRuncBundles, runQuietly, type RuncBundles } from "../integration/runc-bundle.ts";
import { formatLatencyTable, mean, type LatencyRow } from "./latency.ts";
import { endedChildrenCpuNs } from "./process-stats.ts";
import { median } from "./summary.ts";
import { build } from "../scripts/build.ts";

const runtime = fileURLToPath(new URL("../bin/procview-runc.js", import.meta.url));

function settings(argv: string[]): { runs: number; executable?: string } {
  const { values } = parseArgs({
    args: argv,
    options: { runs: { type: "string" }, executable: { type: "string" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write("Usage: node bench/procview-runc.ts [--runs N] [--executable dist/procview]   (default 40 per operation and runtime; the executable built anew)\n");
    process.exit(0);
  }
  const runs = Number(values.runs ?? 40);
  if (!Number.isInteger(runs) || runs < 3) throw new Error(`--runs must be an integer >= 3, not ${values.runs}`);
  return { runs, executable: values.executable };
}

/** Wall time and CPU (of the commands it ran and waited for) of `action`, in ms. */
async function timed(action: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const at = performance.now();
  const cpuBefore = endedChildrenCpuNs();
  await action();
  return { wall: performance.now() - at, cpu: Number(endedChildrenCpuNs() - cpuBefore) / 1e6 };
}

async function main(): Promise<void> {
  const { runs, executable } = settings(process.argv.slice(2));
  const dir = await mkdtemp(join(tmpdir(), "procview-bench-runc-"));
  let fuse: ProcviewFuse | undefined;
  let bundles: RuncBundles | undefined;
  try {
    bundles = await prepareRuncBundles(dir);
    fuse = await startProcviewFuse({ dir: join(dir, "procview") });
    const { runc, root, writeConfig } = bundles;
    const env = { ...process.env, PROCVIEW_STATE_DIR: fuse.stateDir, PROCVIEW_RUNC: runc, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    const log = join(dir, "runc.log");
    const globals = ["--root", root, "--log", log, "--log-format", "json"];
    if (!executable) await build(join(dir, "dist"));
    // The executable is procview-runc when invoked under that name.
    const executableRuntime = join(dir, "procview-runc");
    await symlink(executable ?? join(dir, "dist/procview"), executableRuntime);
    const runtimes = { runc: runc, "procview-runc": runtime, executable: executableRuntime };
    const samples = new Map<string, Array<{ wall: number; cpu: number }>>();
    const add = (key: string, sample: { wall: number; cpu: number }) => samples.set(key, [...(samples.get(key) ?? []), sample]);
    const walls = (key: string) => samples.get(key)!.map((sample) => sample.wall);
    const cpus = (key: string) => samples.get(key)!.map((sample) => sample.cpu);
    const bundle = join(dir, "bundle");

    // Warm-up: the first procview-runc call fills Node's compile cache with the stripped sources.
    writeConfig(bundle, "warm-up", {});
    await runQuietly(runtime, [...globals, "create", "--bundle", bundle, "warm-up"], env);
    await runQuietly(runtime, [...globals, "delete", "--force", "warm-up"], env);
    // …and the executable's first start pages it in.
    await runQuietly(executableRuntime, [...globals, "state", "no-such-container"], env).catch(() => {});

    for (let run = 0; run < runs; run++) {
      for (const [name, binary] of Object.entries(runtimes)) {
        add("node -e 0 (Node's start)", await timed(() => runQuietly(process.execPath, ["-e", "0"])));
        for (const [index, [kind, annotations]] of ([
          ["create, views bound", { "procview.noderesource.dev": "enabled" }],
          ["create, disabled by annotation", { "procview.noderesource.dev": "disabled" }],
        ] as const).entries()) {
          const id = `bench-${run}-${name}-${index}`;
          writeConfig(bundle, id, annotations);
          add(`${kind}|${name}`, await timed(() => runQuietly(binary, [...globals, "create", "--bundle", bundle, id], env)));
          add(`pass-through (state)|${name}`, await timed(() => runQuietly(binary, [...globals, "state", id], env)));
          add(`delete --force|${name}`, await timed(() => runQuietly(binary, [...globals, "delete", "--force", id], env)));
        }
      }
    }

    const rows = (measured: string): LatencyRow[] =>
      ["pass-through (state)", "create, views bound", "create, disabled by annotation", "delete --force"].map((operation) => ({
        operation,
        baseline: walls(`${operation}|runc`),
        measured: walls(`${operation}|${measured}`),
        baselineCpu: cpus(`${operation}|runc`),
        measuredCpu: cpus(`${operation}|${measured}`),
      }));
    const nodeStart = "node -e 0 (Node's start)";
    const runcVersion = execFileSync(runc, ["--version"], { encoding: "utf8" }).split("\n")[0].replace("runc version ", "");
    process.stdout.write(`\nprocview-runc (Node launcher) vs runc ${runcVersion}, ${runs} calls each:\n`);
    process.stdout.write(formatLatencyTable(rows("procview-runc"), "runc", "procview-runc") + "\n");
    process.stdout.write(`\nprocview-runc (the single executable, no Node) vs runc ${runcVersion}, ${runs} calls each:\n`);
    process.stdout.write(formatLatencyTable(rows("executable"), "runc", "executable") + "\n");
    process.stdout.write(`Node's own start (node -e 0): median ${median(walls(nodeStart)).toFixed(1)} ms, CPU ${mean(cpus(nodeStart)).toFixed(1)} ms\n`);
  } finally {
    await bundles?.removeLeftovers();
    await fuse?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench/procview-runc: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

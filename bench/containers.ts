/**
 * `node bench/containers.ts [--reads N] [--rounds R] [--containers K]`: per-read cost as
 * the recorded containers grow: K containers recorded (default 1000, all in the reader's
 * cgroup, so only the server's bookkeeping differs), read cycling over all of them against
 * reads of one, interleaved; and the FUSE server's RSS after reads of one container and
 * after that lookup churn, all once the server has given back its startup pages (ten
 * seconds after its start), as on a node that has run a while. Needs root and /dev/fuse.
 */

import { ContainerRegistry } from "../core/registry.ts";
import { measureInterleaved, startReader, stopReader, type Target } from "./readers.ts";
import { benchCgroup, benchProcview, describeMemory, runBench, startupPagesGivenBack, wholeNumberOptions, withCleanUp } from "./setup.ts";
import { formatThroughputTable } from "./summary.ts";

const usage = `Usage: node bench/containers.ts [--reads N] [--rounds R] [--containers K]
  --reads N       reads per target (default 5000)
  --rounds R      interleaved rounds (default 3)
  --containers K  containers recorded (default 1000)`;

runBench("containers", () =>
  withCleanUp(async (cleanUps) => {
    const settings = wholeNumberOptions(process.argv.slice(2), usage, { reads: 5000, rounds: 3, containers: 1000 });
    const cgroup = benchCgroup("procview-bench", cleanUps);
    const procview = await benchProcview(cleanUps);
    const registry = new ContainerRegistry(procview.stateDir);
    const ids = Array.from({ length: settings.containers }, (_, index) => `bench-${index}`);
    for (const id of ids) registry.put({ id, cgroupPath: cgroup.relativePath, recordedAt: Date.now() });
    const reader = await startReader(cgroup);
    cleanUps.push(() => stopReader(reader));
    await startupPagesGivenBack(procview);

    const views = ["meminfo", "stat"];
    const path = (view: string, id: string) => `${procview.mountpoint}/containers/${id}/proc/${view}`;
    process.stdout.write(`${settings.containers} containers recorded, ${settings.reads} reads per target\n`);
    await reader.read({ paths: views.map((view) => path(view, ids[0])), reads: settings.reads });
    const before = describeMemory("procview daemon after reads of one container", procview.pid);
    for (const view of views) {
      const targets: Target[] = [
        { name: `${view}: 1 container`, paths: [path(view, ids[0])], daemonPid: procview.pid },
        { name: `${view}: cycling over ${settings.containers}`, paths: ids.map((id) => path(view, id)), daemonPid: procview.pid },
      ];
      await reader.read({ paths: targets[1].paths, reads: settings.containers });
      const { results } = await measureInterleaved([reader], targets, settings.reads, settings.rounds);
      process.stdout.write(`\n${formatThroughputTable(results, targets[0].name)}\n`);
    }
    const after = describeMemory(`procview daemon after reads cycling over ${settings.containers}`, procview.pid);
    process.stdout.write(`\n${before}\n${after}\n`);
  }),
);

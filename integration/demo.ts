/**
 * `npm run demo` (as root): the story in one command. A private containerd with procview,
 * a busybox limited to 50 MiB run twice (plugin off, then on), and the host's, the plain
 * container's and the procview container's /proc/meminfo and /proc/uptime side by side.
 * Everything it starts it stops, and everything it makes it removes.
 */

import { readFile } from "node:fs/promises";
import type { Containerd } from "./containerd.ts";
import type { CriClient } from "./cri.ts";
import { startProcviewStack } from "./procview-stack.ts";

const memoryLimitBytes = 50 * 1024 * 1024;
const probe = ["sh", "-c", "head -n 5 /proc/meminfo; cat /proc/uptime"];

export interface DemoColumns {
  host: string[];
  plain: string[];
  procview: string[];
}

async function busyboxOutput(cri: CriClient, containerd: Containerd, name: string): Promise<string[]> {
  const pod = await cri.runPod({ name, uid: `demo-${name}`, namespace: "demo", cgroupParent: containerd.cgroupParent });
  const id = await cri.createContainer(pod, { name: "busybox", image: containerd.images.busybox, command: ["sleep", "3600"], memoryLimitBytes });
  await cri.startContainer(id);
  const result = await cri.execSync(id, probe, 10);
  if (result.exitCode !== 0) throw new Error(`${probe.join(" ")} failed in the container: ${result.stderr}`);
  return result.stdout.trimEnd().split("\n");
}

export async function runDemo(): Promise<DemoColumns> {
  const stack = await startProcviewStack({ procview: false });
  try {
    const plain = await busyboxOutput(stack.cri, stack.containerd, "plain");
    await stack.startFuse();
    await stack.startPlugin();
    const procview = await busyboxOutput(stack.cri, stack.containerd, "procview");
    const hostMeminfo = (await readFile("/proc/meminfo", "utf8")).split("\n").slice(0, 5);
    const hostUptime = (await readFile("/proc/uptime", "utf8")).trimEnd();
    return { host: [...hostMeminfo, hostUptime], plain, procview };
  } finally {
    await stack.stop();
  }
}

export function sideBySide(columns: DemoColumns): string {
  const titles = ["host", "container, no procview", "container, with procview (-m 50m)"];
  const rows = [titles, ...columns.host.map((line, i) => [line, columns.plain[i] ?? "", columns.procview[i] ?? ""])];
  const widths = titles.map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col])).join("   ").trimEnd()).join("\n") + "\n";
}

if (import.meta.main ?? process.argv[1] === new URL(import.meta.url).pathname) {
  if (process.getuid?.() !== 0) {
    process.stderr.write("npm run demo needs root: it runs containerd and mounts FUSE\n");
    process.exit(1);
  }
  process.stdout.write(sideBySide(await runDemo()));
}

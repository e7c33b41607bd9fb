/**
 * `npm run demo` as a user runs it: a child process printing the side-by-side table.
 * Needs root and /dev/fuse like the other real-stack tests.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const demo = fileURLToPath(new URL("./demo.ts", import.meta.url));

test("npm run demo prints the host, a plain container and a procview container side by side", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [demo], { timeout: 120_000 });
  const [titles, ...rows] = stdout.trimEnd().split("\n");
  assert.match(titles, /^host\s+container, no procview\s+container, with procview/);
  assert.equal(rows.length, 6, stdout);

  // Cells are padded to the width of their column, which starts where its title does.
  const starts = [0, titles.indexOf("container, no procview"), titles.indexOf("container, with procview")];
  const columns = rows.map((row) => starts.map((start, i) => row.slice(start, starts[i + 1]).trim()));
  const [memTotalRow, , memAvailableRow] = columns;
  const hostMemTotal = readFileSync("/proc/meminfo", "utf8").split("\n")[0];
  assert.deepEqual(memTotalRow, [hostMemTotal, hostMemTotal, "MemTotal:          51200 kB"]);
  const procviewAvailable = Number(/(\d+) kB/.exec(memAvailableRow[2])?.[1]);
  assert.ok(procviewAvailable > 0 && procviewAvailable <= 51200, memAvailableRow[2]);

  const [hostUptime, plainUptime, procviewUptime] = columns[5].map((cell) => Number(cell.split(" ")[0]));
  assert.ok(Math.abs(plainUptime - hostUptime) < 60, `a plain container shows the host's uptime: ${columns[5]}`);
  assert.ok(procviewUptime >= 0 && procviewUptime < 60, `the procview container's uptime counts from its start: ${columns[5]}`);
});

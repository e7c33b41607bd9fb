/**
 * The unit tests again under Deno 2, so the sources stay runnable by both runtimes.
 * Tests that drive the real stack (containerd, dockerd, FUSE mounts through Node child
 * processes) run under Node only; the Deno FUSE server has its own real-mount test.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

const unitTests = [
  "core/",
  "cli/",
  "fuse/cgroup/",
  "fuse/host/",
  "fuse/views/",
  "fuse/reader/",
  "fuse/procview-tree.test.ts",
  "fuse/native/operations.test.ts",
  "fuse/native/caller-free-tree.test.ts",
  "fuse/kernel/handle-store.test.ts",
  "fuse/kernel/node-table.test.ts",
  "fuse/kernel/protocol.test.ts",
  "fuse/handover/state.test.ts",
  "fuse/handover/channel.test.ts",
  "fuse/handover/protocol.test.ts",
  "nri-plugin/annotations.test.ts",
  "nri-plugin/config.test.ts",
  "nri-plugin/view-selection.test.ts",
  "nri-plugin/byte-queue.test.ts",
  "nri-plugin/mux.test.ts",
  "nri-plugin/ttrpc.test.ts",
  "nri-plugin/procview-plugin.test.ts",
  "nri-plugin/stub.test.ts",
  "integration/apt-sources.test.ts",
  "integration/containerd-config.test.ts",
  "integration/tar-writer.test.ts",
  "integration/leftovers.test.ts",
  "bench/summary.test.ts",
  "bench/process-stats.test.ts",
];

test("unit tests pass under deno test (type-checked by Deno too)", () => {
  const result = spawnSync("deno", ["test", "-A", ...unitTests], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${result.stdout}${result.stderr}`;
  assert.equal(result.status, 0, `deno test failed:\n${output.slice(-8000)}`);
  const summary = /ok \| (\d+) passed \| 0 failed/.exec(output);
  assert.ok(summary && Number(summary[1]) > 100, `deno ran too few tests:\n${output.slice(-2000)}`);
});

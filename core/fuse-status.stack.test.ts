/**
 * The real `procview fuse` server (root, /dev/fuse) names its mount's device in its status
 * file, and the liveness check tells that mount by its device without a request to the
 * server: with the server stopped (SIGSTOP), the device still reads at once, and only the
 * answer probe says the server is not serving.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startProcviewFuse } from "../integration/procview-process.ts";
import { checkFuseLiveness, hostLivenessProbe, readFuseStatus } from "./fuse-status.ts";
import { syscalls } from "./syscalls.ts";

const syscallsModule = new URL("./syscalls.ts", import.meta.url).href;

/** deviceOf in a child process, so that a call that waited on the stopped server would end in the timeout, not hang the test. */
function deviceInChild(path: string): string {
  const script = `import { syscalls } from ${JSON.stringify(syscallsModule)}; process.stdout.write(syscalls().deviceOf(${JSON.stringify(path)}));`;
  return execFileSync(process.execPath, ["--input-type=module", "--eval", script], { encoding: "utf8", timeout: 10_000, killSignal: "SIGKILL" });
}

test("the status names the mount's device; with the server stopped it still reads at once, and liveness fails on the answer alone", async (t) => {
  const server = await startProcviewFuse();
  t.after(async () => {
    process.kill(server.pid, "SIGCONT");
    await server.stop();
  });
  const device = readFuseStatus(server.stateDir)?.device;
  assert.match(device ?? "", /^\d+:\d+$/);
  assert.equal(syscalls().deviceOf(server.mountpoint), device);
  assert.deepEqual(await checkFuseLiveness(server.mountpoint, hostLivenessProbe(server.stateDir, undefined, { byDevice: true })), { live: true, status: readFuseStatus(server.stateDir) });

  process.kill(server.pid, "SIGSTOP");
  assert.equal(deviceInChild(server.mountpoint), device);
  const liveness = await checkFuseLiveness(server.mountpoint, hostLivenessProbe(server.stateDir, undefined, { byDevice: true }));
  assert.ok(!liveness.live && /does not answer: statfs of .* took longer than 1000 ms/.test(liveness.reason), JSON.stringify(liveness));
});

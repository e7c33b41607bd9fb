// The pre-launched plugin as install.sh installs it, started by a real containerd 1.7:
// containerd runs the wrapper, the plugin registers (else containerd would exit), and it
// receives the CreateContainer of a pod made through the CRI.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startContainerd, type Containerd } from "../integration/containerd.ts";
import { connectCri, type CriClient } from "../integration/cri.ts";
import { isRunning } from "../integration/leftovers.ts";
import { installIntoFolder } from "./testdata/private-install.ts";


interface LogRecord {
  msg: string;
  [field: string]: unknown;
}

let dir: string;
let containerd: Containerd | undefined;
let cri: CriClient | undefined;

function pluginLog(): LogRecord[] {
  let text: string;
  try {
    text = readFileSync(join(dir, "log/nri.log"), "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogRecord);
}

async function waitForLog(message: string, timeoutMs = 10_000): Promise<LogRecord> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const record = pluginLog().find((r) => r.msg === message);
    if (record) return record;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no "${message}" in the plugin's log:\n${readFileSync(join(dir, "log/nri.log"), "utf8")}\n${containerd?.logTail() ?? ""}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "procview-deploy-prelaunched-"));
  // The real program: the single executable the build makes.
  const installed = installIntoFolder(dir);
  assert.equal(installed.status, 0, installed.stderr);
  containerd = await startContainerd({ nriPluginPath: join(dir, "plugins"), nriPluginConfigPath: join(dir, "conf") });
  cri = connectCri(containerd.criAddress);
});

after(async () => {
  cri?.close();
  await containerd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("containerd starts the installed 10-procview wrapper, the plugin registers and containerd stays up", async () => {
  const registered = await waitForLog("registered with the NRI runtime");
  assert.equal(registered.name, "procview");
  assert.equal(registered.index, "10");
  const configured = await waitForLog("NRI plugin configured");
  assert.equal(configured.runtime, "containerd");
  assert.equal(configured.mountpoint, "/var/lib/procview");
  assert.ok(containerd && isRunning(containerd.pid), "containerd exits when a pre-launched plugin fails to register");
});

test("the pre-launched plugin is asked about a container created through the CRI", async () => {
  assert.ok(containerd && cri);
  const podId = await cri.runPod({ name: "prelaunched", namespace: "procview-test", cgroupParent: containerd.cgroupParent });
  const containerId = await cri.createContainer(podId, { name: "busybox", image: containerd.images.busybox, command: ["sleep", "600"] });
  await cri.startContainer(containerId);
  // No FUSE server runs in containerd's namespace here: the plugin says so and lets the
  // container start without views, which proves it handled the CreateContainer.
  const skipped = await waitForLog("FUSE server not serving; container starts without procview views");
  assert.equal(skipped.container, "busybox");
  assert.equal((await cri.containerStatus(containerId)).state, "CONTAINER_RUNNING");
});

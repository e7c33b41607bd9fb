/**
 * Pre-launched mode on the real containerd 1.7: containerd starts `procview nri` itself
 * from its plugin folder with NRI_PLUGIN_SOCKET=3, and the plugin adopts that fd.
 * Needs root; the harness downloads containerd and runc on first use. No FUSE server
 * runs, so the proof that the plugin serves containers is its log line for a container
 * created without views; the FUSE path is covered by integration/procview.stack.test.ts.
 * The plugin's settings come from conf.d/10-procview.conf through Configure.
 */

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { startContainerd, type Containerd } from "../integration/containerd.ts";
import { connectCri, type CriClient } from "../integration/cri.ts";

const here = import.meta.url;
const launcher = fileURLToPath(new URL("../bin/procview.js", here));
// The plugin runs on Node even when this test runs under Deno: Deno cannot adopt fd 3.
const node = "Deno" in globalThis ? fileURLToPath(new URL("../node_modules/node/bin/node", here)) : process.execPath;

let dir: string;
let containerd: Containerd | undefined;
let cri: CriClient | undefined;

const logFile = () => join(dir, "nri.log");
const configDir = () => join(dir, "conf.d");
const pluginConfigFile = () => join(configDir(), "10-procview.conf");
const records = (): Record<string, unknown>[] => {
  let text = "";
  try {
    text = readFileSync(logFile(), "utf8");
  } catch {
    return [];
  }
  return text.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Record<string, unknown>);
};

async function until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`${what} did not happen in ${timeoutMs} ms; plugin log:\n${readFileSync(logFile(), "utf8")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The plugin's pid, from the file its wrapper writes before handing over to node. */
function pluginPid(): number | undefined {
  try {
    return Number(readFileSync(join(dir, "plugin.pid"), "utf8"));
  } catch {
    return undefined;
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "procview-prelaunch-"));
  const pluginDir = join(dir, "plugins");
  mkdirSync(pluginDir);
  mkdirSync(join(dir, "mnt"));
  // containerd gives the plugin no PATH and stdio on /dev/null: absolute paths, own log.
  writeFileSync(
    join(pluginDir, "10-procview"),
    [
      "#!/bin/sh",
      `echo $$ > '${join(dir, "plugin.pid")}'`,
      `exec '${node}' '${launcher}' nri --mountpoint '${join(dir, "mnt")}' --state-dir '${join(dir, "state")}' >>'${logFile()}' 2>&1`,
      "",
    ].join("\n"),
  );
  chmodSync(join(pluginDir, "10-procview"), 0o755);
  mkdirSync(configDir());
  writeFileSync(pluginConfigFile(), "views: [meminfo, cpuinfo]\ncpuByQuota: true\n");
  containerd = await startContainerd({ nriPluginPath: pluginDir, nriPluginConfigPath: configDir() });
  cri = connectCri(containerd.criAddress);
});

after(async () => {
  await cri?.teardown().catch(() => {});
  cri?.close();
  await containerd?.stop();
  // containerd does not stop the plugins it launched; the plugin outlives it.
  const pid = pluginPid();
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

test("containerd launches the plugin, which adopts fd 3, registers and serves CreateContainer", async () => {
  await until("registration", () => records().some((r) => r.msg === "registered with the NRI runtime"));
  const registered = records().find((r) => r.msg === "registered with the NRI runtime");
  assert.equal(registered?.name, "procview");
  assert.equal(registered?.index, "10");
  // containerd 1.7 sends a pre-launched plugin no Synchronize (measured): events follow registration.

  const podId = await cri!.runPod({ name: "pre", uid: "uid-pre", namespace: "procview-nri", cgroupParent: containerd!.cgroupParent });
  const id = await cri!.createContainer(podId, { name: "busybox", image: containerd!.images.busybox, command: ["sleep", "3600"] });
  await cri!.startContainer(id);
  const notServing = records().find((r) => r.msg === "FUSE server not serving; container starts without procview views");
  assert.equal(notServing?.containerId, id);
  assert.equal(notServing?.pod, "pre");
  assert.equal((await cri!.execSync(id, ["true"], 10)).exitCode, 0);
});

test("the settings in conf.d/10-procview.conf reach the plugin through Configure", async () => {
  await until("configuration", () => records().some((r) => r.msg === "NRI plugin configured"));
  const configured = records().find((r) => r.msg === "NRI plugin configured");
  assert.deepEqual(configured?.views, ["meminfo", "cpuinfo"]);
  assert.equal(configured?.cpuByQuota, true);
  assert.equal(configured?.defaultPolicy, "all");
});

test("a bad conf.d config is logged with its key; the plugin still registers and containerd keeps running", async () => {
  writeFileSync(pluginConfigFile(), "defaultPolicy: everyone\n");
  const registeredBefore = records().filter((r) => r.msg === "registered with the NRI runtime").length;
  // A restarted containerd launches its pre-launched plugins again, with the config as it is now.
  await containerd!.restart();
  cri!.close();
  cri = connectCri(containerd!.criAddress);
  await until("the new plugin's registration", () => records().filter((r) => r.msg === "registered with the NRI runtime").length > registeredBefore);
  const rejected = records().find((r) => r.msg === "ignoring the plugin config from the runtime; keeping the previous settings");
  assert.equal(rejected?.key, "defaultPolicy");
  assert.equal((await cri!.version()).runtimeName, "containerd");
  const podId = await cri!.runPod({ name: "after-bad", uid: "uid-after-bad", namespace: "procview-nri", cgroupParent: containerd!.cgroupParent });
  const id = await cri!.createContainer(podId, { name: "busybox", image: containerd!.images.busybox, command: ["sleep", "3600"] });
  await cri!.startContainer(id);
  await until("the new plugin serving CreateContainer", () => records().some((r) => r.containerId === id));
});

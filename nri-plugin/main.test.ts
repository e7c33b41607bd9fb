import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger } from "../core/log.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { ContainerState, nriCodec, type CreateContainerRequest, type CreateContainerResponse, type SynchronizeRequest } from "../nri/api.ts";
import { FakeRuntime } from "../nri/testdata/fake-runtime.ts";
import { adoptSocketFd, runNriPlugin, type NriPluginOptions } from "./main.ts";

const quiet = createLogger({ write: () => {} });
const base: NriPluginOptions = { name: "procview", index: "10", mountpoint: "/m", stateDir: "/nonexistent", logger: quiet };

test("runNriPlugin rejects contradictory or missing transports and a bad index", async () => {
  await assert.rejects(runNriPlugin({ ...base, socketPath: "/s", socketFd: 3 }), /not both/);
  await assert.rejects(runNriPlugin(base), /no NRI socket path/);
  await assert.rejects(runNriPlugin({ ...base, socketPath: "/s", index: "1" }), /two digits/);
});

test("adopting an fd that is not a socket fails with a message naming the fd (and Deno's limit under Deno)", () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-main-"));
  const fd = openSync(join(dir, "file"), "w");
  try {
    assert.throws(() => adoptSocketFd(fd), (err: Error) => {
      assert.match(err.message, new RegExp(`NRI socket fd ${fd}`));
      if ("Deno" in globalThis) assert.match(err.message, /only the external mode/);
      return true;
    });
    assert.throws(() => adoptSocketFd(-1), /invalid NRI socket fd -1/);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("runNriPlugin wires the procview policy to the runtime: sync records, no FUSE means no binds", async () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-main-"));
  const runtime = new FakeRuntime(join(dir, "nri.sock"));
  await runtime.listen();
  const stateDir = join(dir, "state");
  const plugin = await runNriPlugin({ ...base, socketPath: runtime.path, mountpoint: join(dir, "mnt"), stateDir });
  try {
    const connection = await runtime.next();
    assert.equal((await connection.registered).plugin_name, "procview");
    const running = { id: "c1", pod_sandbox_id: "p1", name: "app", state: ContainerState.CONTAINER_RUNNING, linux: { cgroups_path: "/k8s.io/c1" } };
    const sync = nriCodec<SynchronizeRequest>("SynchronizeRequest").encode({ pods: [{ id: "p1", name: "web" }], containers: [running] });
    await connection.call("Synchronize", sync);
    assert.equal(new ContainerRegistry(stateDir).get("c1")?.cgroupPath, "/k8s.io/c1");
    // No FUSE server has written its status into this state dir: the container gets no binds.
    const create = nriCodec<CreateContainerRequest>("CreateContainerRequest").encode({ container: { id: "c2", linux: { cgroups_path: "/k8s.io/c2" } } });
    const answer = nriCodec<CreateContainerResponse>("CreateContainerResponse").decode(await connection.call("CreateContainer", create));
    assert.deepEqual(answer, {});
  } finally {
    await plugin.stop();
    await plugin.done;
    await runtime.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

function recordingLogger() {
  const records: Array<Record<string, unknown>> = [];
  return { records, logger: createLogger({ write: (line) => records.push(JSON.parse(line)) }) };
}

async function eventually(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen in 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test("one active plugin per state dir: a second waits unregistered and says why, takes over when the first exits; --replace takes over at once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-main-"));
  const runtime = new FakeRuntime(join(dir, "nri.sock"));
  await runtime.listen();
  const options = { ...base, socketPath: runtime.path, mountpoint: join(dir, "mnt"), stateDir: join(dir, "state") };
  const first = await runNriPlugin(options);
  const second = recordingLogger();
  const third = recordingLogger();
  const plugins = [first];
  try {
    const firstConnection = await runtime.next();
    await firstConnection.registered;
    plugins.push(await runNriPlugin({ ...options, logger: second.logger }));
    await eventually("the second plugin's explanation", () => second.records.some((r) => r.level === "warn"));
    const why = second.records.find((r) => r.level === "warn")!;
    assert.match(String(why.msg), /another procview NRI plugin is active for this state dir: not registering until it exits/);
    assert.equal(why.activePid, process.pid);
    assert.equal(why.activeName, "10-procview");
    assert.equal(runtime.connections, 1, "the second plugin did not connect");

    await first.stop();
    await firstConnection.closed;
    const secondConnection = await runtime.next();
    assert.equal((await secondConnection.registered).plugin_name, "procview");

    plugins.push(await runNriPlugin({ ...options, logger: third.logger, replace: true }));
    await secondConnection.closed;
    const thirdConnection = await runtime.next();
    await thirdConnection.registered;
    assert.ok(third.records.some((r) => r.msg === "the active procview NRI plugin stepped down for this one"));
    await eventually("the replaced plugin's notice", () => second.records.some((r) => String(r.msg).startsWith("replaced by another procview NRI plugin")));
    // The replaced one stands by: still no second connection of its own.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(runtime.connections, 3);
  } finally {
    for (const plugin of plugins) await plugin.stop();
    await runtime.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

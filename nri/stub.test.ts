/**
 * The stub against an in-process stand-in for the runtime (fake-runtime.ts) over a
 * real unix socket; containerd.stack.test.ts runs the stub against the real containerd 1.7.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger, type Logger } from "../core/log.ts";
import {
  nriCodec,
  NriEvent,
  type ConfigureResponse,
  type Container,
  type CreateContainerRequest,
  type CreateContainerResponse,
  type StateChangeEvent,
  type SynchronizeRequest,
  type SynchronizeResponse,
} from "./api.ts";
import { FakeRuntime, type RuntimeOptions } from "./testdata/fake-runtime.ts";
import { maxOutgoingFramePayload, pluginServiceConn } from "./mux.ts";
import { eventMask, startStub, type NriPlugin, type NriStub, type StubTransport } from "./stub.ts";
import { StatusCode, TtrpcStatusError } from "./ttrpc.ts";

const configureResponse = nriCodec<ConfigureResponse>("ConfigureResponse");
const syncRequest = nriCodec<SynchronizeRequest>("SynchronizeRequest");
const syncResponse = nriCodec<SynchronizeResponse>("SynchronizeResponse");
const createRequest = nriCodec<CreateContainerRequest>("CreateContainerRequest");
const createResponse = nriCodec<CreateContainerResponse>("CreateContainerResponse");

interface Harness {
  runtime: FakeRuntime;
  logs: () => Record<string, unknown>[];
  start(plugin: NriPlugin, transport?: StubTransport): NriStub;
}

function withRuntime(options: RuntimeOptions, body: (h: Harness) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "procview-stub-"));
    const runtime = new FakeRuntime(join(dir, "nri.sock"), options);
    await runtime.listen();
    const lines: string[] = [];
    const logger: Logger = createLogger({ level: "debug", write: (line) => lines.push(line) });
    const stubs: NriStub[] = [];
    try {
      await body({
        runtime,
        logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
        start: (plugin, transport) => {
          const stub = startStub({
            name: "procview",
            index: "10",
            plugin,
            logger,
            transport: transport ?? { socketPath: runtime.path },
            reconnectDelayMs: { initial: 20, max: 100 },
          });
          stubs.push(stub);
          return stub;
        },
      });
    } finally {
      for (const stub of stubs) await stub.stop();
      await runtime.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const createOnly: NriPlugin = { createContainer: () => ({}) };

test("the events mask has one bit per handler and never bits past REMOVE_CONTAINER", () => {
  assert.equal(eventMask(createOnly), 0x8);
  assert.equal(eventMask({ createContainer: () => ({}), updateContainer: () => ({}), stopContainer: () => ({}) }), 0x8 | 0x80 | 0x200);
  assert.equal(eventMask({ stateChange: () => {}, stateChangeEvents: [NriEvent.REMOVE_CONTAINER] }), 0x400);
  // All state events by default: everything in 1..11 except Create/Update/Stop.
  assert.equal(eventMask({ stateChange: () => {} }), 0x7ff & ~0x8 & ~0x80 & ~0x200);
  assert.equal(eventMask({ stateChange: () => {}, stateChangeEvents: [12 as never, NriEvent.RUN_POD_SANDBOX] }), 0x1);
});

test("startStub refuses a bad index, a bad name and a plugin without handlers", () => {
  const logger = createLogger({ write: () => {} });
  const transport = { socketPath: "/nonexistent" };
  assert.throws(() => startStub({ name: "p", index: "7", plugin: createOnly, logger, transport }), /two digits/);
  assert.throws(() => startStub({ name: "a b", index: "10", plugin: createOnly, logger, transport }), /simple word/);
  assert.throws(() => startStub({ name: "p", index: "10", plugin: {}, logger, transport }), /no NRI event/);
});

test(
  "registers by name and index, serves Configure sent before the registration reply, answers the mask",
  withRuntime({ configureBeforeRegisterReply: true }, async ({ runtime, start }) => {
    const configured: string[] = [];
    start({ ...createOnly, configure: (r) => void configured.push(r.runtime_name ?? "") });
    const connection = await runtime.next();
    assert.deepEqual(await connection.registered, { plugin_name: "procview", plugin_idx: "10", version: "v1alpha1" });
    const configure = nriCodec<{ runtime_name: string }>("ConfigureRequest").encode({ runtime_name: "containerd" });
    const answer = configureResponse.decode(await connection.call("Configure", configure));
    assert.deepEqual(answer, { events: 0x8 });
    assert.deepEqual(configured, ["", "containerd"]);
  }),
);

test(
  "falls back to v1beta1 when the runtime does not implement v1alpha1, and serves v1beta1 names",
  withRuntime(
    {
      register: (version) => {
        if (version === "v1alpha1") throw new TtrpcStatusError(StatusCode.unimplemented, "no");
      },
    },
    async ({ runtime, start }) => {
      start(createOnly);
      const connection = await runtime.next();
      assert.equal((await connection.registered).version, "v1beta1");
      const answer = await connection.call("Configure", new Uint8Array(), { service: "nri.pkg.api.v1beta1.Plugin" });
      assert.deepEqual(configureResponse.decode(answer), { events: 0x8 });
    },
  ),
);

test(
  "a registration the runtime refuses drops the connection and the stub tries again",
  withRuntime(
    {
      register: () => {
        throw new TtrpcStatusError(StatusCode.unknown, "invalid plugin index");
      },
    },
    async ({ runtime, start, logs }) => {
      start(createOnly);
      const first = await runtime.next();
      await first.closed;
      const second = await runtime.next();
      assert.ok(second !== first);
      assert.ok(logs().some((r) => r.level === "error" && /registration failed/.test(String(r.msg))));
    },
  ),
);

test(
  "Synchronize parts with more=true are answered more=true; the plugin sees everything once, at the end",
  withRuntime({}, async ({ runtime, start }) => {
    const seen: string[][] = [];
    start({ ...createOnly, synchronize: (pods, containers) => (seen.push([...pods.map((p) => p.id!), ...containers.map((c) => c.id!)]), []) });
    const connection = await runtime.next();
    await connection.registered;
    const part1 = syncResponse.decode(await connection.call("Synchronize", syncRequest.encode({ pods: [{ id: "p1" }], more: true })));
    assert.deepEqual(part1, { more: true });
    assert.deepEqual(seen, []);
    const last = syncResponse.decode(await connection.call("Synchronize", syncRequest.encode({ containers: [{ id: "c1" }] })));
    assert.deepEqual(last, {});
    assert.deepEqual(seen, [["p1", "c1"]]);
  }),
);

test(
  "CreateContainer: the plugin's adjustment is answered in frames of at most 4096 bytes",
  withRuntime({}, async ({ runtime, start }) => {
    const big = "x".repeat(10000);
    start({ createContainer: () => ({ adjust: { annotations: { big }, mounts: [{ destination: "/proc/meminfo", type: "bind", source: "/s", options: ["bind", "ro"] }] } }) });
    const connection = await runtime.next();
    await connection.registered;
    const answer = createResponse.decode(await connection.call("CreateContainer", createRequest.encode({ container: { id: "c1" } })));
    assert.equal(answer.adjust?.annotations?.big, big);
    assert.equal(answer.adjust?.mounts?.[0].destination, "/proc/meminfo");
    assert.equal(connection.largestFrame(), maxOutgoingFramePayload);
  }),
);

test(
  "CreateContainer never answers an error: a throwing or late handler answers no change",
  withRuntime({}, async ({ runtime, start, logs }) => {
    let calls = 0;
    start({
      createContainer: async () => {
        calls++;
        if (calls === 1) throw new Error("internal trouble");
        await new Promise((resolve) => setTimeout(resolve, 1000));
        return { adjust: { annotations: { late: "yes" } } };
      },
    });
    const connection = await runtime.next();
    await connection.registered;
    const request = createRequest.encode({ container: { id: "c1" } });
    assert.deepEqual(createResponse.decode(await connection.call("CreateContainer", request)), {});
    // A 400 ms deadline leaves the handler 100 ms; it takes 1 s.
    const started = Date.now();
    assert.deepEqual(createResponse.decode(await connection.call("CreateContainer", request, { timeoutMs: 400 })), {});
    assert.ok(Date.now() - started < 400, "answered before the deadline");
    assert.ok(logs().some((r) => /exceeded the runtime's deadline/.test(String(r.msg))));
  }),
);

test(
  "a plugin that reads identity alone gets CreateContainer and state changes without args, env or mounts; Synchronize in full",
  withRuntime({}, async ({ runtime, start, logs }) => {
    const seen: Array<{ args?: string[]; annotations?: Record<string, string>; cgroups?: string }> = [];
    const container = { id: "c1", name: "app", args: ["sleep", "1"], env: ["A=B"], annotations: { a: "1" }, linux: { cgroups_path: "/pods/c1", oom_score_adj: { value: "5" } } };
    const note = (c?: Container) => void seen.push({ args: c?.args, annotations: c?.annotations, cgroups: c?.linux?.cgroups_path });
    start({
      eventFields: "identity",
      createContainer: ({ container }) => (note(container), {}),
      stateChange: ({ container }) => note(container),
      synchronize: (_pods, containers) => (note(containers[0]), []),
    });
    const connection = await runtime.next();
    await connection.registered;
    await connection.call("Synchronize", syncRequest.encode({ containers: [container] }));
    await connection.call("CreateContainer", createRequest.encode({ container }));
    await connection.call("StateChange", nriCodec<StateChangeEvent>("StateChangeEvent").encode({ event: NriEvent.REMOVE_CONTAINER, container }));
    await connection.call("RemoveContainer", createRequest.encode({ container }));
    const identity = { args: undefined, annotations: { a: "1" }, cgroups: "/pods/c1" };
    assert.deepEqual(seen, [{ ...identity, args: ["sleep", "1"] }, identity, identity, identity]);
    // A container field that runs past the message: no change, and the plugin is not called.
    assert.deepEqual(createResponse.decode(await connection.call("CreateContainer", Buffer.from("12ff01", "hex"))), {});
    assert.equal(seen.length, 4);
    assert.ok(logs().some((r) => r.msg === "CreateContainer failed; answered no change" && /runs past its message/.test(JSON.stringify(r.error))));
  }),
);

test(
  "methods the plugin does not handle answer Unimplemented; dedicated state methods reach stateChange",
  withRuntime({}, async ({ runtime, start }) => {
    const events: number[] = [];
    start({ ...createOnly, stateChange: (e) => void events.push(e.event ?? 0) });
    const connection = await runtime.next();
    await connection.registered;
    await assert.rejects(connection.call("UpdateContainer", new Uint8Array()), (e: unknown) => e instanceof TtrpcStatusError && e.code === 12);
    await assert.rejects(connection.call("Configure", new Uint8Array(), { service: "other.Plugin" }), (e: unknown) => e instanceof TtrpcStatusError && e.code === 12);
    const stateChange = nriCodec<{ event: number }>("StateChangeEvent");
    await connection.call("StateChange", stateChange.encode({ event: NriEvent.REMOVE_CONTAINER }));
    await connection.call("RemoveContainer", createRequest.encode({ container: { id: "c1" } }));
    assert.deepEqual(events, [NriEvent.REMOVE_CONTAINER, NriEvent.REMOVE_CONTAINER]);
  }),
);

test(
  "after the runtime restarts the stub reconnects, registers and synchronizes again",
  withRuntime({}, async ({ runtime, start }) => {
    let closes = 0;
    let syncs = 0;
    start({ ...createOnly, synchronize: () => (syncs++, []), onClose: () => void closes++ });
    const first = await runtime.next();
    await first.registered;
    await first.call("Synchronize", syncRequest.encode({}));
    await runtime.stop();
    // A stopped containerd leaves the socket file behind or none at all: the stub retries until it is back.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await runtime.listen();
    const second = await runtime.next();
    assert.equal((await second.registered).plugin_name, "procview");
    await second.call("Synchronize", syncRequest.encode({}));
    assert.equal(syncs, 2);
    assert.equal(closes, 1);
  }),
);

test("a runtime that comes back is dialled when its socket appears, not at the end of a long backoff", async () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-stub-"));
  const runtime = new FakeRuntime(join(dir, "nri.sock"));
  await runtime.listen();
  const stub = startStub({
    name: "procview",
    index: "10",
    plugin: createOnly,
    logger: createLogger({ write: () => {} }),
    transport: { socketPath: runtime.path },
    reconnectDelayMs: { initial: 10_000, max: 10_000 },
  });
  try {
    await (await runtime.next()).registered;
    await runtime.stop();
    rmSync(runtime.path, { force: true });
    // The stub now waits 10 s before its next attempt.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const back = Date.now();
    await runtime.listen();
    await (await runtime.next()).registered;
    assert.ok(Date.now() - back < 2000, `reconnected after ${Date.now() - back} ms`);
  } finally {
    await stub.stop();
    await runtime.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "bytes that are not NRI make the stub drop that connection and reconnect, without crashing",
  withRuntime({}, async ({ runtime, start, logs }) => {
    start(createOnly);
    const first = await runtime.next();
    await first.registered;
    first.socket.write(Buffer.from("00000000" + "00000001" + "00", "hex"));
    await first.closed;
    await (await runtime.next()).registered;
    assert.ok(logs().some((r) => /protocol error/.test(String(r.msg))));
  }),
);

test(
  "an adopted socket (pre-launched mode) registers, and its loss ends the stub instead of reconnecting",
  withRuntime({}, async ({ runtime, start }) => {
    const socket = connect(runtime.path);
    await new Promise((resolve) => socket.once("connect", resolve));
    const stub = start(createOnly, { socket });
    const connection = await runtime.next();
    await connection.registered;
    connection.socket.destroy();
    await stub.done;
  }),
);

test(
  "a ttrpc request the stub cannot decode is a protocol error, not a crash",
  withRuntime({}, async ({ runtime, start, logs }) => {
    start(createOnly);
    const connection = await runtime.next();
    await connection.registered;
    // Raw request on conn 1 whose payload is not a ttrpc.Request.
    const garbage = Buffer.from("0aff", "hex");
    const message = Buffer.alloc(10 + garbage.length);
    message.writeUInt32BE(garbage.length, 0);
    message.writeUInt32BE(1, 4);
    message.writeUInt8(1, 8);
    garbage.copy(message, 10);
    const frame = Buffer.alloc(8);
    frame.writeUInt32BE(pluginServiceConn, 0);
    frame.writeUInt32BE(message.length, 4);
    connection.socket.write(Buffer.concat([frame, message]));
    await connection.closed;
    assert.ok(logs().some((r) => /protocol error/.test(String(r.msg)) && /undecodable ttrpc request/.test(JSON.stringify(r.error))));
  }),
);

test("stop() ends the retries: a runtime that appears later gets no connection", async () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-stub-"));
  const runtime = new FakeRuntime(join(dir, "nri.sock"));
  const closes: number[] = [];
  try {
    const stub = startStub({
      name: "procview",
      index: "10",
      plugin: { ...createOnly, onClose: () => void closes.push(1) },
      logger: createLogger({ write: () => {} }),
      transport: { socketPath: runtime.path },
      reconnectDelayMs: { initial: 10, max: 20 },
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    await stub.stop();
    await runtime.listen();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(runtime.connections, 0);
    assert.deepEqual(closes, []);
  } finally {
    await runtime.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "stop() closes a live connection and reports it to the plugin before it resolves",
  withRuntime({}, async ({ runtime, start }) => {
    let closes = 0;
    const stub = start({ ...createOnly, onClose: () => void closes++ });
    const connection = await runtime.next();
    await connection.registered;
    await stub.stop();
    assert.equal(closes, 1);
    await connection.closed;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(runtime.connections, 1);
  }),
);

test(
  "a Synchronize answered past the runtime's deadline, or failed, makes the stub reconnect instead of idling as a zombie",
  withRuntime({}, async ({ runtime, start }) => {
    let syncs = 0;
    start({
      ...createOnly,
      synchronize: async () => {
        syncs++;
        if (syncs === 1) await new Promise((resolve) => setTimeout(resolve, 300));
        if (syncs === 2) throw new Error("cannot list");
        return [];
      },
    });
    const first = await runtime.next();
    await first.registered;
    await assert.rejects(first.call("Synchronize", syncRequest.encode({}), { timeoutMs: 200 }));
    await first.closed;
    const second = await runtime.next();
    await second.registered;
    await assert.rejects(second.call("Synchronize", syncRequest.encode({})), /cannot list/);
    await second.closed;
    const third = await runtime.next();
    await third.registered;
    assert.deepEqual(syncResponse.decode(await third.call("Synchronize", syncRequest.encode({}))), {});
    assert.equal(syncs, 3);
  }),
);

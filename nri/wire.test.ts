import assert from "node:assert/strict";
import { test } from "node:test";
import { nriCodec, type CreateContainerRequest, type StateChangeEvent } from "./api.ts";
import { readCreateContainerIdentity, readStateChangeIdentity } from "./identity.ts";
import { readTtrpcRequest, requestCodec } from "./ttrpc.ts";
import { readMessage, type WireSchema } from "./wire.ts";

const createRequest = nriCodec<CreateContainerRequest>("CreateContainerRequest");
const stateChange = nriCodec<StateChangeEvent>("StateChangeEvent");

/** A request as containerd sends it: identity and much besides, 64-bit limits included. */
const fullRequest: CreateContainerRequest = {
  pod: {
    id: "p".repeat(64),
    name: "web-0",
    uid: "8c1f-uid",
    namespace: "shop",
    labels: { app: "web" },
    annotations: { "procview.noderesource.dev/pod": "enabled", "io.kubernetes.cri.sandbox-name": "web-0" },
    runtime_handler: "runc",
    linux: {
      cgroup_parent: "/kubepods/burstable/pod8c1f",
      cgroups_path: "/kubepods/burstable/pod8c1f/sandbox",
      resources: { memory: { limit: { value: "9223372036854771712" } }, cpu: { quota: { value: "-1" } } },
    },
    pid: 4242,
  },
  container: {
    id: "c".repeat(64),
    pod_sandbox_id: "p".repeat(64),
    name: "nginx",
    state: 2,
    labels: { tier: "front" },
    annotations: { "views.procview.noderesource.dev/container.nginx": "meminfo,cpuinfo" },
    args: ["nginx", "-g", "daemon off;"],
    env: ["PATH=/usr/bin", "HOME=/root"],
    mounts: [{ destination: "/etc/hosts", type: "bind", source: "/var/lib/hosts", options: ["rbind", "ro"] }],
    linux: {
      namespaces: [{ type: "pid" }],
      resources: { memory: { limit: { value: "52428800" } }, cpu: { shares: { value: "2" } } },
      oom_score_adj: { value: "-998" },
      cgroups_path: "kubepods-burstable-pod8c1f.slice:cri-containerd:cccc",
    },
    pid: 4343,
  },
};

test("a CreateContainerRequest's identity reads as protobufjs reads those fields, and nothing else", () => {
  const bytes = createRequest.encode(fullRequest);
  const full = createRequest.decode(bytes);
  const identity = readCreateContainerIdentity(bytes);
  const { labels, annotations, id, name, uid, namespace, runtime_handler, pid } = full.pod!;
  assert.deepEqual(identity.pod, { id, name, uid, namespace, labels, annotations, runtime_handler, pid, linux: { cgroup_parent: full.pod!.linux!.cgroup_parent, cgroups_path: full.pod!.linux!.cgroups_path } });
  const c = full.container!;
  assert.deepEqual(identity.container, {
    id: c.id,
    pod_sandbox_id: c.pod_sandbox_id,
    name: c.name,
    state: c.state,
    labels: c.labels,
    annotations: c.annotations,
    linux: { cgroups_path: c.linux!.cgroups_path },
    pid: c.pid,
  });
});

test("a StateChangeEvent's identity carries its event; an empty message reads as {}", () => {
  const bytes = stateChange.encode({ event: 11, pod: { id: "p1", name: "web-0" }, container: { id: "c1", env: ["A=B"] } });
  assert.deepEqual(readStateChangeIdentity(bytes), { event: 11, pod: { id: "p1", name: "web-0" }, container: { id: "c1" } });
  assert.deepEqual(readStateChangeIdentity(new Uint8Array()), {});
});

test("a ttrpc request reads as protobufjs reads it: 64-bit timeout as a decimal string, metadata in order", () => {
  const request = {
    service: "nri.pkg.api.v1alpha1.Plugin",
    method: "CreateContainer",
    payload: new Uint8Array([1, 2, 3, 0, 255]),
    timeout_nano: "9007199254740993",
    metadata: [
      { key: "a", value: "1" },
      { key: "b", value: "ü" },
    ],
  };
  const bytes = requestCodec.encode(request);
  const read = readTtrpcRequest(bytes);
  assert.deepEqual({ ...read, payload: Array.from(read.payload!) }, { ...request, payload: Array.from(request.payload) });
  assert.deepEqual({ ...requestCodec.decode(bytes), payload: Array.from(read.payload!) }, { ...read, payload: Array.from(read.payload!) });
});

const scalars: WireSchema = { 1: ["small", "int32"], 2: ["wide", "int64"], 3: ["unsigned", "uint32"] };

test("varints from byte vectors: negative int32 and int64 take ten bytes, uint32 keeps 32 bits", () => {
  const minusOne = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
  assert.deepEqual(readMessage(scalars, new Uint8Array([0x08, ...minusOne, 0x10, ...minusOne, 0x18, 0xff, 0xff, 0xff, 0xff, 0x0f])), {
    small: -1,
    wide: "-1",
    unsigned: 4294967295,
  });
  // 2^63 - 1 and 2^53 + 1: past what a double holds exactly.
  assert.deepEqual(readMessage(scalars, new Uint8Array([0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])), { wide: "9223372036854775807" });
  assert.deepEqual(readMessage(scalars, new Uint8Array([0x10, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])), { wide: "9007199254740993" });
});

test("fields the schema does not name are skipped whatever their wire type", () => {
  // field 9 fixed64, field 10 fixed32, field 11 varint, field 12 bytes, then field 3 = 7
  const bytes = new Uint8Array([0x49, 1, 2, 3, 4, 5, 6, 7, 8, 0x55, 1, 2, 3, 4, 0x58, 0x96, 0x01, 0x62, 2, 0xaa, 0xbb, 0x18, 7]);
  assert.deepEqual(readMessage(scalars, bytes), { unsigned: 7 });
});

test("bytes that are not a valid encoding throw a RangeError that says where", () => {
  const invalid: Array<[number[], RegExp]> = [
    [[0x08, 0x80], /truncated varint at offset 2/],
    [[0x62, 5, 1, 2], /field of 5 bytes at offset 2 runs past its message \(4\)/],
    [[0x0a, 1, 0], /field small has wire type 2/],
    [[0x4b], /wire type 3 at offset 1 is not one proto3 uses/],
    [[0x49, 1, 2], /fixed-width field runs past its message/],
    [[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /varint longer than 10 bytes/],
  ];
  for (const [bytes, message] of invalid) assert.throws(() => readMessage(scalars, new Uint8Array(bytes)), (err: unknown) => err instanceof RangeError && message.test(err.message), String(bytes));
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../core/log.ts";
import {
  encodeTtrpcMessage,
  maxTtrpcMessageLength,
  MessageType,
  requestCodec,
  responseCodec,
  StatusCode,
  TtrpcClient,
  TtrpcMessageDecoder,
  TtrpcProtocolError,
  TtrpcServer,
  TtrpcStatusError,
  type TtrpcHandler,
} from "./ttrpc.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const quiet = createLogger({ write: () => {} });

// RegisterPlugin("procview", "10") as a ttrpc request on stream 1 with a 5 s timeout,
// encoded by hand: header [len 0x44][stream 1][type 1][flags 0], then ttrpc.Request
// {1: "nri.pkg.api.v1alpha1.Runtime", 2: "RegisterPlugin", 3: {1: "procview", 2: "10"}, 4: 5e9}.
const registerPayload = "0a0870726f6376696577" + "12023130";
const registerRequest =
  "0a1c" + Buffer.from("nri.pkg.api.v1alpha1.Runtime").toString("hex") +
  "120e" + Buffer.from("RegisterPlugin").toString("hex") +
  "1a0e" + registerPayload +
  "20" + "80e497d012";
const registerMessage = "00000044" + "00000001" + "01" + "00" + registerRequest;

test("a request message encodes to the hand-computed bytes", () => {
  assert.equal(
    hex(encodeTtrpcMessage({ streamId: 1, type: MessageType.request, flags: 0, payload: Buffer.from(registerRequest, "hex") })),
    registerMessage,
  );
});

test("the client sends RegisterPlugin as exactly those bytes, on odd stream ids", async () => {
  const sent: string[] = [];
  const client = new TtrpcClient({ send: (b) => sent.push(hex(b)), logger: quiet });
  const first = client.call("nri.pkg.api.v1alpha1.Runtime", "RegisterPlugin", Buffer.from(registerPayload, "hex"), 5000);
  const second = client.call("nri.pkg.api.v1alpha1.Runtime", "RegisterPlugin", Buffer.from(registerPayload, "hex"), 5000);
  assert.equal(sent[0], registerMessage);
  assert.equal(sent[1].slice(8, 16), "00000003");
  // The empty Response (success, no payload) is a bare header; both answers in one read.
  client.receive(Buffer.from("00000000" + "00000003" + "0200" + "00000000" + "00000001" + "0200", "hex"));
  assert.equal(hex(await first), "");
  assert.equal(hex(await second), "");
});

test("the client rejects with the status a runtime answers", async () => {
  const client = new TtrpcClient({ send: () => {}, logger: quiet });
  const call = client.call("s", "m", new Uint8Array(), 5000);
  // Response{status: {code: 12, message: "x"}}
  const payload = "0a05" + "080c" + "1201" + "78";
  client.receive(Buffer.from("00000007" + "00000001" + "0200" + payload, "hex"));
  await assert.rejects(call, (err: unknown) => err instanceof TtrpcStatusError && err.code === 12 && err.message === "x");
});

test("the client times out a call nobody answers and fails pending calls when closed", async () => {
  const client = new TtrpcClient({ send: () => {}, logger: quiet });
  await assert.rejects(client.call("s", "m", new Uint8Array(), 10), (err: unknown) => err instanceof TtrpcStatusError && err.code === StatusCode.deadlineExceeded);
  const pending = client.call("s", "m", new Uint8Array(), 5000);
  client.close(new Error("gone"));
  await assert.rejects(pending, /gone/);
  await assert.rejects(client.call("s", "m", new Uint8Array(), 5000), /gone/);
});

test("the decoder reassembles a message cut inside its header and splits two in one read", () => {
  const decoder = new TtrpcMessageDecoder();
  const bytes = Buffer.from(registerMessage + "00000001" + "00000003" + "0100" + "ff", "hex");
  assert.deepEqual(decoder.push(bytes.subarray(0, 7)), []);
  const messages = decoder.push(bytes.subarray(7));
  assert.deepEqual(
    messages.map((m) => [m.streamId, m.type, m.flags, hex(m.payload)]),
    [[1, 1, 0, registerRequest], [3, 1, 0, "ff"]],
  );
});

test("the decoder rejects a message longer than 4 MiB from its header alone", () => {
  const header = Buffer.alloc(10);
  header.writeUInt32BE(maxTtrpcMessageLength + 1, 0);
  assert.throws(() => new TtrpcMessageDecoder().push(header), TtrpcProtocolError);
  assert.throws(
    () => encodeTtrpcMessage({ streamId: 1, type: 1, flags: 0, payload: new Uint8Array(maxTtrpcMessageLength + 1) }),
    RangeError,
  );
});

function serverWith(route: (service: string, method: string) => TtrpcHandler | undefined) {
  const answers: Buffer[] = [];
  const server = new TtrpcServer({ send: (b) => answers.push(Buffer.from(b)), logger: quiet }, route);
  const next = async () => {
    for (let i = 0; i < 100 && answers.length === 0; i++) await new Promise((r) => setImmediate(r));
    const message = new TtrpcMessageDecoder().push(answers.shift()!)[0];
    return { ...message, response: responseCodec.decode(message.payload) };
  };
  return { server, next };
}

const request = (streamId: number, service: string, method: string, payload = new Uint8Array()) =>
  encodeTtrpcMessage({ streamId, type: MessageType.request, flags: 0, payload: requestCodec.encode({ service, method, payload }) });

test("the server answers an unknown service or method with Unimplemented (12)", async () => {
  const { server, next } = serverWith((service, method) => (service === "S" && method === "M" ? () => new Uint8Array() : undefined));
  server.receive(request(1, "S", "Other"));
  const answer = await next();
  assert.equal(answer.streamId, 1);
  assert.equal(answer.type, MessageType.response);
  assert.equal(answer.response.status?.code, 12);
  server.receive(request(3, "T", "M"));
  assert.equal((await next()).response.status?.code, 12);
});

test("the server passes payload, deadline and metadata to the handler and answers its bytes", async () => {
  let seen: unknown;
  const { server, next } = serverWith(() => (payload, context) => {
    seen = { payload: hex(payload), timeoutMs: context.timeoutMs, metadata: context.metadata };
    return Buffer.from("0801", "hex");
  });
  const bytes = requestCodec.encode({
    service: "S",
    method: "M",
    payload: Buffer.from("abcd", "hex"),
    timeout_nano: "2000000000",
    metadata: [{ key: "containerd-namespace-ttrpc", value: "k8s.io" }],
  });
  server.receive(encodeTtrpcMessage({ streamId: 5, type: MessageType.request, flags: 0, payload: bytes }));
  const answer = await next();
  assert.deepEqual(seen, { payload: "abcd", timeoutMs: 2000, metadata: { "containerd-namespace-ttrpc": "k8s.io" } });
  assert.equal(answer.streamId, 5);
  assert.equal(answer.response.status, undefined);
  assert.equal(hex(answer.response.payload!), "0801");
});

test("a failing handler fails only its call, with its status or Unknown (2)", async () => {
  const { server, next } = serverWith((_s, method) => () => {
    if (method === "Status") throw new TtrpcStatusError(StatusCode.invalidArgument, "bad");
    throw new Error("boom");
  });
  server.receive(request(1, "S", "Status"));
  assert.deepEqual((await next()).response.status, { code: 3, message: "bad" });
  server.receive(request(3, "S", "Plain"));
  assert.deepEqual((await next()).response.status, { code: 2, message: "boom" });
});

test("a request payload that is not protobuf is a protocol error for the owner to handle", () => {
  const { server } = serverWith(() => undefined);
  const garbage = encodeTtrpcMessage({ streamId: 1, type: MessageType.request, flags: 0, payload: Buffer.from("0aff", "hex") });
  assert.throws(() => server.receive(garbage), TtrpcProtocolError);
});

test("a response larger than ttrpc allows becomes an Internal (13) status instead of a crash", async () => {
  const { server, next } = serverWith(() => () => new Uint8Array(maxTtrpcMessageLength + 1));
  server.receive(request(1, "S", "Huge"));
  const answer = await next();
  assert.equal(answer.response.status?.code, StatusCode.internal);
  assert.equal(answer.response.payload, undefined);
});

/**
 * ttrpc (containerd/ttrpc) over one multiplexed connection: the message framing, a
 * client for the runtime's service and a server for the plugin's. Only unary calls:
 * NRI uses no streams.
 */

import type { Logger } from "../core/log.ts";
import { limitedLogger, type LimitedLogger } from "../core/log-limiter.ts";
import { codecOf, type TtrpcRequest, type TtrpcResponse } from "./api.ts";
import { ByteQueue } from "./byte-queue.ts";
import { readMessage, type WireSchema } from "./wire.ts";

export const ttrpcHeaderLength = 10;
/** ttrpc's own message size limit. */
export const maxTtrpcMessageLength = 4 * 1024 * 1024;

export const MessageType = { request: 1, response: 2, data: 3 } as const;

/** google.rpc.Code values that the plugin sends or interprets. */
export const StatusCode = {
  ok: 0,
  unknown: 2,
  invalidArgument: 3,
  deadlineExceeded: 4,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
} as const;

export interface TtrpcMessage {
  streamId: number;
  type: number;
  flags: number;
  payload: Uint8Array;
}

export const requestCodec = codecOf<TtrpcRequest>("ttrpc.Request");
export const responseCodec = codecOf<TtrpcResponse>("ttrpc.Response");

/** ttrpc.Request, read by wire.ts: it wraps every call the runtime makes. */
const requestSchema: WireSchema = {
  1: ["service", "string"],
  2: ["method", "string"],
  3: ["payload", "bytes"],
  4: ["timeout_nano", "int64"],
  5: ["metadata", { repeated: { 1: ["key", "string"], 2: ["value", "string"] } }],
};

export function readTtrpcRequest(bytes: Uint8Array): TtrpcRequest {
  return readMessage(requestSchema, bytes);
}

export class TtrpcProtocolError extends Error {}

/** A call answered with a non-OK status. */
export class TtrpcStatusError extends Error {
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export function encodeTtrpcMessage(message: TtrpcMessage): Buffer {
  if (message.payload.length > maxTtrpcMessageLength) {
    throw new RangeError(`ttrpc message of ${message.payload.length} bytes exceeds ${maxTtrpcMessageLength}`);
  }
  const bytes = Buffer.alloc(ttrpcHeaderLength + message.payload.length);
  bytes.writeUInt32BE(message.payload.length, 0);
  bytes.writeUInt32BE(message.streamId, 4);
  bytes.writeUInt8(message.type, 8);
  bytes.writeUInt8(message.flags, 9);
  bytes.set(message.payload, ttrpcHeaderLength);
  return bytes;
}

/** Cuts one connection's byte stream into ttrpc messages. Throws TtrpcProtocolError on oversize. */
export class TtrpcMessageDecoder {
  private readonly queue = new ByteQueue();

  push(chunk: Uint8Array): TtrpcMessage[] {
    this.queue.push(chunk);
    const messages: TtrpcMessage[] = [];
    while (this.queue.length >= ttrpcHeaderLength) {
      const header = this.queue.peek(ttrpcHeaderLength);
      const length = header.readUInt32BE(0);
      if (length > maxTtrpcMessageLength) {
        throw new TtrpcProtocolError(`ttrpc message of ${length} bytes exceeds ${maxTtrpcMessageLength}`);
      }
      if (this.queue.length < ttrpcHeaderLength + length) break;
      this.queue.take(ttrpcHeaderLength);
      messages.push({
        streamId: header.readUInt32BE(4),
        type: header.readUInt8(8),
        flags: header.readUInt8(9),
        payload: this.queue.take(length),
      });
    }
    return messages;
  }
}

export interface CallContext {
  service: string;
  method: string;
  /** The caller's deadline in ms from receipt, when it sent one. */
  timeoutMs?: number;
  metadata: Record<string, string>;
}

/** Turns a request payload into a response payload; throw TtrpcStatusError to answer a status. */
export type TtrpcHandler = (payload: Uint8Array, context: CallContext) => Promise<Uint8Array> | Uint8Array;

/** Looks a method up; undefined answers Unimplemented. */
export type TtrpcRouter = (service: string, method: string) => TtrpcHandler | undefined;

export interface TtrpcEndpointOptions {
  /** Sends bytes of this connection's stream. */
  send: (bytes: Uint8Array) => void;
  logger: Logger;
}

/**
 * Serves requests arriving on one connection. `receive` throws TtrpcProtocolError on
 * bytes that are not ttrpc, so the owner can drop the connection; a handler failure
 * only fails its own call.
 */
export class TtrpcServer {
  private readonly decoder = new TtrpcMessageDecoder();
  private readonly options: TtrpcEndpointOptions;
  private readonly route: TtrpcRouter;
  /** For messages the peer may repeat at will: one line per interval, not per message. */
  private readonly protocolWarnings: LimitedLogger;

  constructor(options: TtrpcEndpointOptions, route: TtrpcRouter) {
    this.options = options;
    this.route = route;
    this.protocolWarnings = limitedLogger(options.logger);
  }

  receive(bytes: Uint8Array): void {
    for (const message of this.decoder.push(bytes)) {
      if (message.type !== MessageType.request) {
        this.protocolWarnings.warn("ignored a ttrpc message that is not a request", {
          streamId: message.streamId,
          type: message.type,
        });
        continue;
      }
      let request: TtrpcRequest;
      try {
        request = readTtrpcRequest(message.payload);
      } catch (err) {
        throw new TtrpcProtocolError(`undecodable ttrpc request on stream ${message.streamId}: ${(err as Error).message}`);
      }
      void this.serve(message.streamId, request);
    }
  }

  private async serve(streamId: number, request: TtrpcRequest): Promise<void> {
    const service = request.service ?? "";
    const method = request.method ?? "";
    const handler = this.route(service, method);
    let response: TtrpcResponse;
    if (!handler) {
      response = { status: { code: StatusCode.unimplemented, message: `${service}/${method} is not implemented` } };
    } else {
      try {
        const payload = await handler(request.payload ?? new Uint8Array(), contextOf(service, method, request));
        response = { payload };
      } catch (err) {
        const code = err instanceof TtrpcStatusError ? err.code : StatusCode.unknown;
        this.options.logger.warn("ttrpc call failed", { service, method, code, error: err });
        response = { status: { code, message: (err as Error).message } };
      }
    }
    this.options.send(this.encodeResponse(streamId, response, service, method));
  }

  /** The response message; a response too large for ttrpc becomes an Internal status. */
  private encodeResponse(streamId: number, response: TtrpcResponse, service: string, method: string): Buffer {
    const encode = (r: TtrpcResponse) =>
      encodeTtrpcMessage({ streamId, type: MessageType.response, flags: 0, payload: responseCodec.encode(r) });
    try {
      return encode(response);
    } catch (err) {
      this.options.logger.error("cannot encode a ttrpc response", { service, method, error: err });
      return encode({ status: { code: StatusCode.internal, message: `cannot encode the response: ${(err as Error).message}` } });
    }
  }
}

function contextOf(service: string, method: string, request: TtrpcRequest): CallContext {
  const metadata: Record<string, string> = {};
  for (const entry of request.metadata ?? []) metadata[entry.key ?? ""] = entry.value ?? "";
  const timeoutNano = Number(request.timeout_nano ?? 0);
  return { service, method, metadata, timeoutMs: timeoutNano > 0 ? timeoutNano / 1e6 : undefined };
}

interface PendingCall {
  resolve: (payload: Uint8Array) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Calls the peer's service over one connection. */
export class TtrpcClient {
  private readonly decoder = new TtrpcMessageDecoder();
  private readonly options: TtrpcEndpointOptions;
  private readonly pending = new Map<number, PendingCall>();
  private nextStreamId = 1;
  private closedWith: Error | undefined;
  /** For messages the peer may repeat at will: one line per interval, not per message. */
  private readonly protocolWarnings: LimitedLogger;

  constructor(options: TtrpcEndpointOptions) {
    this.options = options;
    this.protocolWarnings = limitedLogger(options.logger);
  }

  /** Resolves with the response payload; rejects with TtrpcStatusError, a timeout or a closed connection. */
  call(service: string, method: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const streamId = this.nextStreamId;
    // Client streams are odd: 1, 3, 5, …
    this.nextStreamId += 2;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(streamId);
        reject(new TtrpcStatusError(StatusCode.deadlineExceeded, `${service}/${method} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(streamId, { resolve, reject, timer });
      const request: TtrpcRequest = { service, method, payload, timeout_nano: String(BigInt(timeoutMs) * 1_000_000n) };
      this.options.send(
        encodeTtrpcMessage({ streamId, type: MessageType.request, flags: 0, payload: requestCodec.encode(request) }),
      );
    });
  }

  receive(bytes: Uint8Array): void {
    for (const message of this.decoder.push(bytes)) {
      const call = this.pending.get(message.streamId);
      if (message.type !== MessageType.response || !call) {
        this.protocolWarnings.warn("ignored an unexpected ttrpc message", {
          streamId: message.streamId,
          type: message.type,
        });
        continue;
      }
      this.pending.delete(message.streamId);
      clearTimeout(call.timer);
      let response: TtrpcResponse;
      try {
        response = responseCodec.decode(message.payload);
      } catch (err) {
        call.reject(new TtrpcProtocolError(`undecodable ttrpc response: ${(err as Error).message}`));
        continue;
      }
      const code = response.status?.code ?? StatusCode.ok;
      if (code !== StatusCode.ok) call.reject(new TtrpcStatusError(code, response.status?.message ?? ""));
      else call.resolve(response.payload ?? new Uint8Array());
    }
  }

  /** Fails every pending and future call with `reason` (the connection is gone). */
  close(reason: Error): void {
    this.closedWith = reason;
    for (const call of this.pending.values()) {
      clearTimeout(call.timer);
      call.reject(reason);
    }
    this.pending.clear();
  }
}

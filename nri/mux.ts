/**
 * The NRI socket multiplexer (containerd/nri pkg/net/multiplex): one unix socket carries
 * several byte streams as frames `[conn id u32 BE][payload length u32 BE][payload]`.
 * Conn 1 carries the plugin's ttrpc server, conn 2 the runtime's.
 */

import type { Duplex } from "node:stream";
import type { Logger } from "../core/log.ts";
import { limitedLogger, type LimitedLogger } from "../core/log-limiter.ts";
import { ByteQueue } from "./byte-queue.ts";

export const pluginServiceConn = 1;
export const runtimeServiceConn = 2;

export const muxHeaderLength = 8;
/**
 * containerd reads frames through a 4096-byte buffer and drops the connection on a
 * larger one (measured: 4097 kills it), so everything we send is cut to this size.
 */
export const maxOutgoingFramePayload = 4096;
/** A ttrpc message is at most 4 MiB plus its header; anything larger is not NRI. */
export const maxIncomingFramePayload = 4 * 1024 * 1024 + 1024;

export interface MuxFrame {
  connId: number;
  payload: Buffer;
}

export class MuxProtocolError extends Error {}

/** The frames that carry `data` on `connId`, none with more than `maxPayload` bytes. */
export function encodeMuxFrames(connId: number, data: Uint8Array, maxPayload = maxOutgoingFramePayload): Buffer[] {
  if (!Number.isInteger(connId) || connId <= 0 || connId > 0xffffffff) {
    throw new RangeError(`invalid multiplexer conn id ${connId}`);
  }
  if (!Number.isInteger(maxPayload) || maxPayload <= 0) throw new RangeError(`invalid frame size ${maxPayload}`);
  const frames: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += maxPayload) {
    const chunk = data.subarray(offset, Math.min(offset + maxPayload, data.length));
    const frame = Buffer.alloc(muxHeaderLength + chunk.length);
    frame.writeUInt32BE(connId, 0);
    frame.writeUInt32BE(chunk.length, 4);
    frame.set(chunk, muxHeaderLength);
    frames.push(frame);
  }
  return frames;
}

/** Cuts a received byte stream into frames. Throws MuxProtocolError on a frame no runtime sends. */
export class MuxFrameDecoder {
  private readonly queue = new ByteQueue();

  push(chunk: Uint8Array): MuxFrame[] {
    this.queue.push(chunk);
    const frames: MuxFrame[] = [];
    while (this.queue.length >= muxHeaderLength) {
      const header = this.queue.peek(muxHeaderLength);
      const connId = header.readUInt32BE(0);
      const length = header.readUInt32BE(4);
      if (connId === 0) throw new MuxProtocolError("multiplexer frame for reserved conn id 0");
      if (length > maxIncomingFramePayload) {
        throw new MuxProtocolError(`multiplexer frame of ${length} bytes exceeds ${maxIncomingFramePayload}`);
      }
      if (this.queue.length < muxHeaderLength + length) break;
      this.queue.take(muxHeaderLength);
      frames.push({ connId, payload: this.queue.take(length) });
    }
    return frames;
  }
}

export interface MuxConnection {
  /** Sends bytes of this connection's stream, cut into frames the runtime accepts. */
  write(data: Uint8Array): void;
}

export type MuxDataHandler = (data: Buffer) => void;

/**
 * Routes frames of one socket to per-connection handlers. A protocol error, or a
 * handler that throws on the bytes it got, destroys the whole socket and reports the
 * error: the streams cannot be resynchronised, and the stub reconnects.
 */
export class Multiplexer {
  private readonly socket: Duplex;
  private readonly decoder = new MuxFrameDecoder();
  private readonly handlers = new Map<number, MuxDataHandler>();
  /** The peer decides how many frames it sends: one line per interval, not per frame. */
  private readonly logger: LimitedLogger;
  private readonly onError: (err: Error) => void;

  constructor(socket: Duplex, logger: Logger, onError: (err: Error) => void) {
    this.socket = socket;
    this.logger = limitedLogger(logger);
    this.onError = onError;
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
  }

  open(connId: number, onData: MuxDataHandler): MuxConnection {
    this.handlers.set(connId, onData);
    return {
      write: (data) => {
        if (this.socket.destroyed) return;
        for (const frame of encodeMuxFrames(connId, data)) this.socket.write(frame);
      },
    };
  }

  private receive(chunk: Buffer): void {
    try {
      for (const frame of this.decoder.push(chunk)) {
        const handler = this.handlers.get(frame.connId);
        // A newer runtime may open streams we do not serve; they must not cost the others.
        if (handler) handler(frame.payload);
        else this.logger.warn("dropped multiplexer frame for a connection we do not serve", { connId: frame.connId });
      }
    } catch (err) {
      this.socket.destroy();
      this.onError(err as Error);
    }
  }
}

/**
 * The control channel between a FUSE server and the successor taking its connection
 * over: a unix socket carrying frames, each a JSON message or a block of bytes (the
 * state). A frame is its payload length (u32, big-endian), its kind (u8), the payload.
 */

import type { Socket } from "node:net";

export type Frame = { kind: "message"; message: Record<string, unknown> } | { kind: "bytes"; bytes: Uint8Array };

const messageKind = 1;
const bytesKind = 2;
const headerSize = 5;
/** Well above the tables' default sizes (~110 MB when full), far below what would hurt. */
export const maxFrameBytes = 512 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeFrame(frame: Frame): Uint8Array {
  const payload = frame.kind === "message" ? encoder.encode(JSON.stringify(frame.message)) : frame.bytes;
  if (payload.byteLength > maxFrameBytes) throw new Error(`handover frame of ${payload.byteLength} bytes exceeds ${maxFrameBytes}`);
  const out = new Uint8Array(headerSize + payload.byteLength);
  new DataView(out.buffer).setUint32(0, payload.byteLength);
  out[4] = frame.kind === "message" ? messageKind : bytesKind;
  out.set(payload, headerSize);
  return out;
}

/** Cuts a byte stream into frames; throws on a frame no peer of ours would send. */
export class FrameDecoder {
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  push(chunk: Uint8Array): Frame[] {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
    const frames: Frame[] = [];
    for (;;) {
      if (this.#pendingBytes < headerSize) return frames;
      const head = this.#peek(headerSize);
      const length = new DataView(head.buffer, head.byteOffset, headerSize).getUint32(0);
      const kind = head[4];
      if (length > maxFrameBytes) throw new Error(`handover frame of ${length} bytes exceeds ${maxFrameBytes}`);
      if (kind !== messageKind && kind !== bytesKind) throw new Error(`unknown handover frame kind ${kind}`);
      if (this.#pendingBytes < headerSize + length) return frames;
      const payload = this.#take(headerSize + length).subarray(headerSize);
      if (kind === bytesKind) {
        frames.push({ kind: "bytes", bytes: payload });
        continue;
      }
      const message: unknown = JSON.parse(decoder.decode(payload));
      if (typeof message !== "object" || message === null || Array.isArray(message)) throw new Error("handover message is not a JSON object");
      frames.push({ kind: "message", message: message as Record<string, unknown> });
    }
  }

  #peek(size: number): Uint8Array {
    if (this.#pending[0].byteLength < size) this.#pending = [this.#concat()];
    return this.#pending[0];
  }

  #take(size: number): Uint8Array {
    const whole = this.#pending.length === 1 ? this.#pending[0] : this.#concat();
    const taken = whole.slice(0, size);
    this.#pending = whole.byteLength > size ? [whole.subarray(size)] : [];
    this.#pendingBytes -= size;
    return taken;
  }

  #concat(): Uint8Array {
    const whole = new Uint8Array(this.#pendingBytes);
    let at = 0;
    for (const part of this.#pending) {
      whole.set(part, at);
      at += part.byteLength;
    }
    return whole;
  }
}

/** One end of the channel: send frames, await the next one within a deadline. */
export class HandoverChannel {
  readonly #socket: Socket;
  readonly #frames: Frame[] = [];
  #waiter: ((frame: Frame | Error) => void) | undefined;
  #failure: Error | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    const decoder = new FrameDecoder();
    socket.on("data", (chunk: Uint8Array) => {
      try {
        for (const frame of decoder.push(chunk)) this.#deliver(frame);
      } catch (err) {
        this.#fail(err as Error);
        socket.destroy();
      }
    });
    socket.on("error", (err) => this.#fail(err));
    socket.on("close", () => this.#fail(new Error("the other side closed the handover channel")));
  }

  send(message: Record<string, unknown>): Promise<void> {
    return this.#write(encodeFrame({ kind: "message", message }));
  }

  sendBytes(bytes: Uint8Array): Promise<void> {
    return this.#write(encodeFrame({ kind: "bytes", bytes }));
  }

  /** The next message, which must be of `type`; an error message from the peer or a timeout rejects. */
  async receive(type: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const frame = await this.#next(timeoutMs, `a '${type}' message`);
    if (frame.kind !== "message") throw new Error(`expected a '${type}' message, got bytes`);
    if (frame.message.type === "error") throw new Error(`the other side gave up: ${String(frame.message.reason)}`);
    if (frame.message.type !== type) throw new Error(`expected a '${type}' message, got '${String(frame.message.type)}'`);
    return frame.message;
  }

  async receiveBytes(timeoutMs: number): Promise<Uint8Array> {
    const frame = await this.#next(timeoutMs, "the state bytes");
    if (frame.kind !== "bytes") throw new Error("expected the state bytes, got a message");
    return frame.bytes;
  }

  /** Ends the channel: what was sent still goes out, a receive() waiting here fails at once. */
  close(): void {
    this.#socket.end();
    this.#fail(new Error("the handover channel was closed on this side"));
  }

  #next(timeoutMs: number, what: string): Promise<Frame> {
    const queued = this.#frames.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`no ${what} within ${timeoutMs} ms on the handover channel`));
      }, timeoutMs);
      this.#waiter = (frame) => {
        clearTimeout(timer);
        this.#waiter = undefined;
        if (frame instanceof Error) reject(frame);
        else resolve(frame);
      };
    });
  }

  #deliver(frame: Frame): void {
    if (this.#waiter) this.#waiter(frame);
    else this.#frames.push(frame);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#waiter?.(this.#failure);
  }

  #write(bytes: Uint8Array): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }
}

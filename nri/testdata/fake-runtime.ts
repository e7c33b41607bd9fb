/**
 * A stand-in for the NRI runtime side, for tests only: it listens on a unix socket,
 * answers RegisterPlugin and calls the plugin's service, the way containerd does
 * (measured facts in the project's nri-protocol notes). It is built from this
 * package's multiplexer and ttrpc pieces, whose bytes mux.test.ts and ttrpc.test.ts
 * check against hand-computed vectors; containerd.stack.test.ts runs the real containerd.
 */

import { createServer, type Server, type Socket } from "node:net";
import { createLogger } from "../../core/log.ts";
import { nriCodec, type RegisterPluginRequest } from "../api.ts";
import { Multiplexer, MuxFrameDecoder, pluginServiceConn, runtimeServiceConn } from "../mux.ts";
import { TtrpcClient, TtrpcServer, type TtrpcHandler } from "../ttrpc.ts";

const registerCodec = nriCodec<RegisterPluginRequest>("RegisterPluginRequest");
const pluginService = "nri.pkg.api.v1alpha1.Plugin";

export interface RuntimeOptions {
  /** How RegisterPlugin is answered for an API version; resolve = success. */
  register?: (version: string, request: RegisterPluginRequest) => void;
  /** Configure the plugin before answering RegisterPlugin, as containerd may. */
  configureBeforeRegisterReply?: boolean;
}

/** One accepted plugin connection, seen from the runtime. */
export interface PluginConnection {
  socket: Socket;
  registered: Promise<RegisterPluginRequest & { version: string }>;
  /** Calls the plugin's service. */
  call(method: string, payload: Uint8Array, options?: { service?: string; timeoutMs?: number }): Promise<Uint8Array>;
  /** Largest multiplexer frame payload the plugin sent. */
  largestFrame(): number;
  closed: Promise<void>;
}

export class FakeRuntime {
  readonly path: string;
  private server: Server | undefined;
  private readonly waiting: ((c: PluginConnection) => void)[] = [];
  private readonly accepted: PluginConnection[] = [];
  private readonly sockets = new Set<Socket>();
  /** Plugin connections accepted so far. */
  connections = 0;
  private readonly options: RuntimeOptions;

  constructor(path: string, options: RuntimeOptions = {}) {
    this.path = path;
    this.options = options;
  }

  async listen(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve) => server.listen(this.path, resolve));
    this.server = server;
  }

  /** Closes the listener and every connection, as a stopping containerd does. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.accepted.length = 0;
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  /** The next plugin connection (already accepted ones first). */
  next(): Promise<PluginConnection> {
    const ready = this.accepted.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private accept(socket: Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    const quiet = createLogger({ write: () => {} });
    const frames = new MuxFrameDecoder();
    let largest = 0;
    socket.on("data", (chunk: Buffer) => {
      for (const frame of frames.push(chunk)) largest = Math.max(largest, frame.payload.length);
    });
    socket.on("error", () => {});
    const mux = new Multiplexer(socket, quiet, () => {});
    const pluginConn = mux.open(pluginServiceConn, (bytes) => client.receive(bytes));
    const client = new TtrpcClient({ send: (b) => pluginConn.write(b), logger: quiet });
    let registeredResolve: (r: RegisterPluginRequest & { version: string }) => void = () => {};
    const registered = new Promise<RegisterPluginRequest & { version: string }>((r) => (registeredResolve = r));
    const connection: PluginConnection = {
      socket,
      registered,
      call: (method, payload, o = {}) => client.call(o.service ?? pluginService, method, payload, o.timeoutMs ?? 2000),
      largestFrame: () => largest,
      closed: new Promise((resolve) => socket.once("close", () => resolve())),
    };
    const register: TtrpcHandler = async (payload, context) => {
      const request = registerCodec.decode(payload);
      const version = context.service.split(".")[3];
      this.options.register?.(version, request);
      if (this.options.configureBeforeRegisterReply) {
        await connection.call("Configure", new Uint8Array());
      }
      registeredResolve({ ...request, version });
      return new Uint8Array();
    };
    const runtimeConn = mux.open(runtimeServiceConn, (bytes) => server.receive(bytes));
    const server = new TtrpcServer({ send: (b) => runtimeConn.write(b), logger: quiet }, (service, method) =>
      service.endsWith(".Runtime") && method === "RegisterPlugin" ? register : undefined,
    );
    const waiter = this.waiting.shift();
    if (waiter) waiter(connection);
    else this.accepted.push(connection);
  }
}


/**
 * The plugin side of NRI, in the spirit of containerd/nri's pkg/stub: a plugin is an
 * object with optional lifecycle handlers; the stub owns the socket, registration,
 * the Plugin service (under the v1alpha1 and v1beta1 names), the event subscription,
 * split Synchronize calls and reconnecting when the runtime restarts.
 */

import { watch, type FSWatcher } from "node:fs";
import { connect, type Socket } from "node:net";
import { basename, dirname } from "node:path";
import type { Duplex } from "node:stream";
import type { Logger } from "../core/log.ts";
import {
  nriCodec,
  NriEvent,
  type ConfigureRequest,
  type ConfigureResponse,
  type Container,
  type ContainerUpdate,
  type CreateContainerRequest,
  type CreateContainerResponse,
  type Empty,
  type NriEventNumber,
  type PodSandbox,
  type RegisterPluginRequest,
  type StateChangeEvent,
  type StopContainerRequest,
  type StopContainerResponse,
  type SynchronizeRequest,
  type SynchronizeResponse,
  type UpdateContainerRequest,
  type UpdateContainerResponse,
  type UpdateContainersRequest,
  type UpdateContainersResponse,
} from "./api.ts";
import { readCreateContainerIdentity, readStateChangeIdentity } from "./identity.ts";
import { Multiplexer, pluginServiceConn, runtimeServiceConn } from "./mux.ts";
import { StatusCode, TtrpcClient, TtrpcServer, TtrpcStatusError, type CallContext, type TtrpcHandler } from "./ttrpc.ts";

type Awaitable<T> = T | Promise<T>;

/** What a plugin implements; the stub subscribes to exactly the events it has handlers for. */
export interface NriPlugin {
  configure?(request: ConfigureRequest): Awaitable<void>;
  /** All pods and containers the runtime knows, once per connection (parts already joined). */
  synchronize?(pods: PodSandbox[], containers: Container[]): Awaitable<ContainerUpdate[]>;
  createContainer?(request: CreateContainerRequest): Awaitable<CreateContainerResponse>;
  updateContainer?(request: UpdateContainerRequest): Awaitable<UpdateContainerResponse>;
  stopContainer?(request: StopContainerRequest): Awaitable<StopContainerResponse>;
  /** Every other lifecycle event (REMOVE_CONTAINER, RUN_POD_SANDBOX, …). */
  stateChange?(event: StateChangeEvent): Awaitable<void>;
  /** The events stateChange subscribes to; all of them when absent. */
  stateChangeEvents?: readonly NriEventNumber[];
  /**
   * "identity": CreateContainer and stateChange get the pod's and container's identity
   * alone (identity.ts), read in a fraction of a full decode's time; Synchronize still
   * gets everything. Default "all".
   */
  eventFields?: "identity" | "all";
  /** The runtime announced it is shutting down. */
  shutdown?(): Awaitable<void>;
  /** The connection to the runtime is gone (the stub reconnects unless it runs on an inherited fd). */
  onClose?(): void;
}

export type StubTransport = { socketPath: string } | { socket: Duplex };

export interface StubOptions {
  name: string;
  /** Two decimal digits: the plugin's place in the runtime's call order. */
  index: string;
  plugin: NriPlugin;
  logger: Logger;
  /** A socket path (reconnects when the runtime restarts) or an adopted socket (pre-launched; no reconnect). */
  transport: StubTransport;
  /** How long RegisterPlugin may take before the connection is dropped. Default 5000 ms. */
  registrationTimeoutMs?: number;
  reconnectDelayMs?: { initial: number; max: number };
}

export interface NriStub {
  /** Asks the runtime to update or evict containers outside of an event. */
  updateContainers(request: UpdateContainersRequest): Promise<UpdateContainersResponse>;
  /** Disconnects and stops reconnecting. */
  stop(): Promise<void>;
  /** Settles when the stub is finished for good: stopped, or its inherited socket closed. */
  readonly done: Promise<void>;
}

export const apiVersions = ["v1alpha1", "v1beta1"] as const;
const defaultRequestTimeoutMs = 2000;
/** Answer this long before the runtime's deadline, to leave room for the round trip. */
const deadlineMarginMs = 300;
/** Events a runtime before NRI 0.12 accepts (bits past REMOVE_CONTAINER make it refuse the plugin). */
const supportedEventMask = (1 << NriEvent.REMOVE_CONTAINER) - 1;

const stateChangeOnlyEvents: readonly NriEventNumber[] = [
  NriEvent.RUN_POD_SANDBOX,
  NriEvent.STOP_POD_SANDBOX,
  NriEvent.REMOVE_POD_SANDBOX,
  NriEvent.POST_CREATE_CONTAINER,
  NriEvent.START_CONTAINER,
  NriEvent.POST_START_CONTAINER,
  NriEvent.POST_UPDATE_CONTAINER,
  NriEvent.REMOVE_CONTAINER,
];

/**
 * Runtimes from NRI 0.12 call dedicated methods for events older ones send as
 * StateChange; serving them as StateChange saves the runtime a fallback round trip.
 */
const dedicatedStateMethods: Record<string, NriEventNumber> = {
  RunPodSandbox: NriEvent.RUN_POD_SANDBOX,
  StopPodSandbox: NriEvent.STOP_POD_SANDBOX,
  RemovePodSandbox: NriEvent.REMOVE_POD_SANDBOX,
  PostCreateContainer: NriEvent.POST_CREATE_CONTAINER,
  StartContainer: NriEvent.START_CONTAINER,
  PostStartContainer: NriEvent.POST_START_CONTAINER,
  PostUpdateContainer: NriEvent.POST_UPDATE_CONTAINER,
  RemoveContainer: NriEvent.REMOVE_CONTAINER,
};

/** The Configure answer: one bit per handled event, only bits the runtime accepts. */
export function eventMask(plugin: NriPlugin): number {
  const events: number[] = [];
  if (plugin.createContainer) events.push(NriEvent.CREATE_CONTAINER);
  if (plugin.updateContainer) events.push(NriEvent.UPDATE_CONTAINER);
  if (plugin.stopContainer) events.push(NriEvent.STOP_CONTAINER);
  if (plugin.stateChange) events.push(...(plugin.stateChangeEvents ?? stateChangeOnlyEvents));
  let mask = 0;
  for (const event of events) mask |= 1 << (event - 1);
  return mask & supportedEventMask;
}

const codecs = {
  register: nriCodec<RegisterPluginRequest>("RegisterPluginRequest"),
  empty: nriCodec<Empty>("Empty"),
  updateContainersRequest: nriCodec<UpdateContainersRequest>("UpdateContainersRequest"),
  updateContainersResponse: nriCodec<UpdateContainersResponse>("UpdateContainersResponse"),
  configureRequest: nriCodec<ConfigureRequest>("ConfigureRequest"),
  configureResponse: nriCodec<ConfigureResponse>("ConfigureResponse"),
  synchronizeRequest: nriCodec<SynchronizeRequest>("SynchronizeRequest"),
  synchronizeResponse: nriCodec<SynchronizeResponse>("SynchronizeResponse"),
  createRequest: nriCodec<CreateContainerRequest>("CreateContainerRequest"),
  createResponse: nriCodec<CreateContainerResponse>("CreateContainerResponse"),
  updateRequest: nriCodec<UpdateContainerRequest>("UpdateContainerRequest"),
  updateResponse: nriCodec<UpdateContainerResponse>("UpdateContainerResponse"),
  stopRequest: nriCodec<StopContainerRequest>("StopContainerRequest"),
  stopResponse: nriCodec<StopContainerResponse>("StopContainerResponse"),
  stateChange: nriCodec<StateChangeEvent>("StateChangeEvent"),
};

/** Throws unless `name` and `index` are what the runtime accepts in RegisterPlugin. */
export function checkPluginIdentity(name: string, index: string): void {
  if (!/^[0-9]{2}$/.test(index)) throw new Error(`plugin index must be two digits, got ${JSON.stringify(index)}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new Error(`plugin name must be a simple word, got ${JSON.stringify(name)}`);
  }
}

export function startStub(options: StubOptions): NriStub {
  checkPluginIdentity(options.name, options.index);
  if (eventMask(options.plugin) === 0) throw new Error("the plugin handles no NRI event");
  return new Stub(options);
}

class Stub implements NriStub {
  readonly done: Promise<void>;
  private readonly options: StubOptions;
  private readonly logger: Logger;
  private session: Session | undefined;
  /** Settles when the current session's socket has closed. */
  private sessionClosed: Promise<void> = Promise.resolve();
  private stopped = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** A connection attempt not yet answered by the runtime. */
  private dialing: Socket | undefined;
  /** Watches the socket's folder while the runtime is away (see watchForSocket). */
  private socketWatcher: FSWatcher | undefined;
  private delayMs: number;
  private finish: () => void = () => {};

  constructor(options: StubOptions) {
    this.options = options;
    this.logger = options.logger;
    this.delayMs = this.delays.initial;
    this.done = new Promise((resolve) => (this.finish = resolve));
    if ("socket" in options.transport) this.adopt(options.transport.socket);
    else this.dial(options.transport.socketPath);
  }

  private get delays(): { initial: number; max: number } {
    return this.options.reconnectDelayMs ?? { initial: 250, max: 5000 };
  }

  async updateContainers(request: UpdateContainersRequest): Promise<UpdateContainersResponse> {
    const session = this.session;
    if (!session?.registeredAs) throw new Error("not registered with the runtime");
    const payload = await session.client.call(
      `nri.pkg.api.${session.registeredAs}.Runtime`,
      "UpdateContainers",
      codecs.updateContainersRequest.encode(request),
      defaultRequestTimeoutMs,
    );
    return codecs.updateContainersResponse.decode(payload);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.stopWatching();
    this.dialing?.destroy();
    this.session?.close();
    await this.sessionClosed;
    this.finish();
  }

  private dial(socketPath: string): void {
    const socket: Socket = connect(socketPath);
    this.dialing = socket;
    let connected = false;
    socket.once("connect", () => {
      connected = true;
      this.dialing = undefined;
      this.stopWatching();
      this.logger.info("connected to the NRI runtime", { socketPath });
      this.adopt(socket);
    });
    socket.once("error", (err) => {
      if (connected) return;
      this.dialing = undefined;
      // Expected while the runtime restarts: log once per outage, then quietly retry.
      if (this.delayMs === this.delays.initial) this.logger.warn("cannot reach the NRI runtime, retrying", { socketPath, error: err });
      this.scheduleReconnect(socketPath);
    });
  }

  private scheduleReconnect(socketPath: string): void {
    if (this.stopped) return;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.delays.max);
    this.reconnectTimer = setTimeout(() => this.dial(socketPath), delay);
    this.watchForSocket(socketPath);
  }

  /**
   * A runtime that comes back creates its socket anew: dial then, rather than at the end
   * of a backoff that may have grown to seconds, in which new containers would get no
   * views. Without a watch (an unwatchable folder) the backoff alone retries.
   */
  private watchForSocket(socketPath: string): void {
    if (this.socketWatcher) return;
    try {
      this.socketWatcher = watch(dirname(socketPath), (_event, name) => {
        if (String(name) !== basename(socketPath) || this.stopped || this.dialing || this.session) return;
        clearTimeout(this.reconnectTimer);
        this.dial(socketPath);
      });
      this.socketWatcher.on("error", () => this.stopWatching());
    } catch {
      this.socketWatcher = undefined;
    }
  }

  private stopWatching(): void {
    this.socketWatcher?.close();
    this.socketWatcher = undefined;
  }

  private adopt(socket: Duplex): void {
    const session = new Session(socket, this.options, () => {
      this.delayMs = this.delays.initial;
    });
    this.session = session;
    let closed: () => void = () => {};
    this.sessionClosed = new Promise((resolve) => (closed = resolve));
    socket.once("close", () => {
      closed();
      session.close();
      if (this.session === session) this.session = undefined;
      try {
        this.options.plugin.onClose?.();
      } catch (err) {
        this.logger.error("the plugin's onClose failed", { error: err });
      }
      if ("socketPath" in this.options.transport) {
        if (!this.stopped) this.logger.warn("lost the NRI runtime connection, reconnecting");
        this.scheduleReconnect(this.options.transport.socketPath);
      } else {
        if (!this.stopped) this.logger.error("the runtime closed the pre-launched plugin's socket; it cannot be reopened");
        this.finish();
      }
    });
  }
}

interface EventDecoders {
  /** CreateContainerRequest, and the dedicated lifecycle requests of the same shape. */
  createRequest(bytes: Uint8Array): CreateContainerRequest;
  stateChange(bytes: Uint8Array): StateChangeEvent;
}

/** The plugin's choice of NriPlugin.eventFields, made once per connection. */
function eventDecoders(plugin: NriPlugin): EventDecoders {
  if (plugin.eventFields === "identity") return { createRequest: readCreateContainerIdentity, stateChange: readStateChangeIdentity };
  return { createRequest: (bytes) => codecs.createRequest.decode(bytes), stateChange: (bytes) => codecs.stateChange.decode(bytes) };
}

/** One connection to the runtime: registration and the served Plugin calls. */
class Session {
  readonly client: TtrpcClient;
  registeredAs: (typeof apiVersions)[number] | undefined;
  private readonly socket: Duplex;
  private readonly options: StubOptions;
  private readonly logger: Logger;
  private readonly onSynchronized: () => void;
  private requestTimeoutMs = defaultRequestTimeoutMs;
  private syncPods: PodSandbox[] = [];
  private syncContainers: Container[] = [];
  private readonly decode: EventDecoders;

  constructor(socket: Duplex, options: StubOptions, onSynchronized: () => void) {
    this.socket = socket;
    this.options = options;
    this.decode = eventDecoders(options.plugin);
    this.logger = options.logger;
    this.onSynchronized = onSynchronized;
    const mux = new Multiplexer(socket, this.logger, (err) =>
      this.logger.error("dropping the NRI connection after a protocol error", { error: err }),
    );
    // Serve conn 1 before registering: the runtime may send Configure before it answers RegisterPlugin.
    const pluginConn = mux.open(pluginServiceConn, (bytes) => server.receive(bytes));
    const server = new TtrpcServer({ send: (b) => pluginConn.write(b), logger: this.logger }, (service, method) =>
      this.route(service, method),
    );
    const runtimeConn = mux.open(runtimeServiceConn, (bytes) => this.client.receive(bytes));
    this.client = new TtrpcClient({ send: (b) => runtimeConn.write(b), logger: this.logger });
    socket.on("error", (err) => this.logger.warn("NRI socket error", { error: err }));
    void this.register();
  }

  close(): void {
    this.client.close(new Error("the NRI connection is closed"));
    this.socket.destroy();
  }

  private async register(): Promise<void> {
    const request = codecs.register.encode({ plugin_name: this.options.name, plugin_idx: this.options.index });
    const timeout = this.options.registrationTimeoutMs ?? 5000;
    for (const version of apiVersions) {
      try {
        await this.client.call(`nri.pkg.api.${version}.Runtime`, "RegisterPlugin", request, timeout);
        this.registeredAs = version;
        this.logger.info("registered with the NRI runtime", { name: this.options.name, index: this.options.index, api: version });
        return;
      } catch (err) {
        if (err instanceof TtrpcStatusError && err.code === StatusCode.unimplemented) continue;
        if (!this.socket.destroyed) this.logger.error("NRI registration failed, dropping the connection", { error: err });
        this.close();
        return;
      }
    }
    this.logger.error("the runtime implements no NRI API version we speak", { tried: apiVersions });
    this.close();
  }

  private route(service: string, method: string): TtrpcHandler | undefined {
    if (!apiVersions.some((version) => service === `nri.pkg.api.${version}.Plugin`)) return undefined;
    const plugin = this.options.plugin;
    const decode = this.decode;
    switch (method) {
      case "Configure":
        return (payload) => this.configure(payload);
      case "Synchronize":
        return (payload, context) => this.synchronize(payload, context);
      case "Shutdown":
        return async () => {
          this.logger.info("the NRI runtime is shutting down");
          await plugin.shutdown?.();
          return codecs.empty.encode({});
        };
      case "CreateContainer":
        if (!plugin.createContainer) return undefined;
        return this.withDeadline({ decode: decode.createRequest }, codecs.createResponse, (r) => plugin.createContainer!(r), "CreateContainer");
      case "UpdateContainer":
        if (!plugin.updateContainer) return undefined;
        return this.withDeadline(codecs.updateRequest, codecs.updateResponse, (r) => plugin.updateContainer!(r), "UpdateContainer");
      case "StopContainer":
        if (!plugin.stopContainer) return undefined;
        return this.withDeadline(codecs.stopRequest, codecs.stopResponse, (r) => plugin.stopContainer!(r), "StopContainer");
      case "StateChange":
        if (!plugin.stateChange) return undefined;
        return async (payload) => {
          await plugin.stateChange!(decode.stateChange(payload));
          return codecs.empty.encode({});
        };
    }
    const event = Object.hasOwn(dedicatedStateMethods, method) ? dedicatedStateMethods[method] : undefined;
    if (event === undefined || !plugin.stateChange) return undefined;
    return async (payload) => {
      // The dedicated requests are {pod = 1, container = 2}; StateChangeEvent has them at 2 and 3.
      const { pod, container } = decode.createRequest(payload);
      await plugin.stateChange!({ event, pod, container });
      return codecs.empty.encode({});
    };
  }

  private async configure(payload: Uint8Array): Promise<Uint8Array> {
    const request = codecs.configureRequest.decode(payload);
    const requestTimeout = Number(request.request_timeout ?? 0);
    if (requestTimeout > 0) this.requestTimeoutMs = requestTimeout;
    this.logger.info("configured by the NRI runtime", {
      runtime: request.runtime_name,
      version: request.runtime_version,
    });
    await this.options.plugin.configure?.(request);
    return codecs.configureResponse.encode({ events: eventMask(this.options.plugin) });
  }

  private async synchronize(payload: Uint8Array, context: CallContext): Promise<Uint8Array> {
    const started = Date.now();
    const request = codecs.synchronizeRequest.decode(payload);
    this.syncPods.push(...(request.pods ?? []));
    this.syncContainers.push(...(request.containers ?? []));
    if (request.more) return codecs.synchronizeResponse.encode({ more: true });
    const pods = this.syncPods;
    const containers = this.syncContainers;
    this.syncPods = [];
    this.syncContainers = [];
    let update: ContainerUpdate[] = [];
    try {
      update = (await this.options.plugin.synchronize?.(pods, containers)) ?? [];
    } catch (err) {
      // A failed sync leaves the runtime holding a connection it never adds: reconnect instead.
      this.logger.error("synchronize failed, reconnecting", { error: err });
      setImmediate(() => this.close());
      throw err;
    }
    const elapsed = Date.now() - started;
    const budget = this.deadlineOf(context);
    if (elapsed >= budget) {
      this.logger.error("synchronize answered too late for the runtime, reconnecting", { elapsedMs: elapsed, budgetMs: budget });
      setImmediate(() => this.close());
    } else {
      this.onSynchronized();
      // While the runtime adds the plugin, before its first CreateContainer would wait for them.
      setImmediate(() => {
        for (const codec of Object.values(codecs)) codec.prepare();
      });
    }
    this.logger.info("synchronized with the NRI runtime", { pods: pods.length, containers: containers.length });
    return codecs.synchronizeResponse.encode({ update });
  }

  /** The runtime's deadline for a call: its own timeout, else the configured or default request timeout. */
  private deadlineOf(context: CallContext): number {
    return context.timeoutMs ?? this.requestTimeoutMs;
  }

  /**
   * Wraps an event handler so the runtime always gets an answer in time. A late or
   * failed handler answers the empty response: an error status to CreateContainer
   * would fail the container, and a late answer makes the runtime drop the plugin.
   */
  private withDeadline<Req, Res extends object>(
    requestCodec: { decode(bytes: Uint8Array): Req },
    responseCodec: { encode(value: Res): Uint8Array },
    handle: (request: Req) => Awaitable<Res>,
    method: string,
  ): TtrpcHandler {
    return async (payload, context) => {
      const budget = this.deadlineOf(context) - deadlineMarginMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), Math.max(budget, 0))));
      try {
        const request = requestCodec.decode(payload);
        const result = await Promise.race([Promise.resolve(handle(request)), late]);
        if (result === "late") {
          this.logger.error(`${method} handler exceeded the runtime's deadline; answered no change`, { budgetMs: budget });
          return responseCodec.encode({} as Res);
        }
        return responseCodec.encode(result);
      } catch (err) {
        this.logger.error(`${method} failed; answered no change`, { error: err });
        return responseCodec.encode({} as Res);
      } finally {
        clearTimeout(timer);
      }
    };
  }
}

/**
 * A small typed CRI client: the integration tests drive containerd the way kubelet does
 * (pods, containers, exec), because NRI only sees containers made through the CRI.
 * Pods use the host's network namespace, so no CNI plugin is needed.
 */

import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

export interface PodOptions {
  name: string;
  namespace?: string;
  uid?: string;
  /** cgroupfs-driver parent, e.g. "/procview-test-1a2b": containers land in `<parent>/<id>`. */
  cgroupParent?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  /** Share the host's network namespace (default); a private one would need CNI. */
  hostNetwork?: boolean;
  /** Share the host's pid namespace (Kubernetes' hostPID). */
  hostPid?: boolean;
  /** Allow privileged containers in the pod (kubelet sets it when one is privileged). */
  privileged?: boolean;
  /** Where the runtime writes the containers' logs (absolute); none without it. */
  logDirectory?: string;
}

export interface ContainerResources {
  memoryLimitBytes?: number;
  cpusetCpus?: string;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
}

/** A host path in the container; propagation as Kubernetes' mountPropagation. */
export interface ContainerMount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
  propagation?: "None" | "HostToContainer" | "Bidirectional";
}

export interface ContainerOptions extends ContainerResources {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  mounts?: ContainerMount[];
  privileged?: boolean;
  readonlyRootfs?: boolean;
  dropCapabilities?: string[];
  noNewPrivileges?: boolean;
  /** The container's log file, relative to the pod's logDirectory. */
  logPath?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export type ContainerState = "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";

export interface PodSummary {
  id: string;
  name: string;
  namespace: string;
  ready: boolean;
  annotations: Record<string, string>;
}

export interface ContainerSummary {
  id: string;
  podId: string;
  name: string;
  state: ContainerState;
  annotations: Record<string, string>;
}

export interface ContainerStatus {
  id: string;
  name: string;
  state: ContainerState;
  exitCode: number;
  reason: string;
  message: string;
  /** What the runtime applied, as far as it reports it. */
  resources: ContainerResources;
}

export interface RuntimeVersion {
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface CriClient {
  version(): Promise<RuntimeVersion>;
  runPod(options: PodOptions): Promise<string>;
  stopPod(podId: string): Promise<void>;
  removePod(podId: string): Promise<void>;
  listPods(): Promise<PodSummary[]>;
  createContainer(podId: string, options: ContainerOptions): Promise<string>;
  startContainer(containerId: string): Promise<void>;
  /** Sends the stop signal, then SIGKILL after `timeoutSeconds` (0: at once). */
  stopContainer(containerId: string, timeoutSeconds?: number): Promise<void>;
  removeContainer(containerId: string): Promise<void>;
  listContainers(podId?: string): Promise<ContainerSummary[]>;
  containerStatus(containerId: string): Promise<ContainerStatus>;
  updateContainerResources(containerId: string, resources: ContainerResources): Promise<void>;
  execSync(containerId: string, cmd: string[], timeoutSeconds?: number): Promise<ExecResult>;
  /** Tags of the images the CRI knows (it sees `ctr` imports only after an event). */
  listImages(): Promise<string[]>;
  /** Stops and removes every pod (with its containers) and any container left outside one. */
  teardown(): Promise<void>;
  close(): void;
}

const moduleUrl = import.meta.url;
const protoPath = fileURLToPath(new URL("../proto/cri.proto", moduleUrl));
const callTimeoutMs = 60_000;

type UnaryCallback = (error: grpc.ServiceError | null, response?: unknown) => void;
type UnaryMethod = (request: object, options: grpc.CallOptions, callback: UnaryCallback) => grpc.ClientUnaryCall;

/** Wire shapes (snake_case, int64 as string) of the responses we read. */
interface WireResources {
  cpu_period: string;
  cpu_quota: string;
  cpu_shares: string;
  memory_limit_in_bytes: string;
  cpuset_cpus: string;
}

interface WirePod {
  id: string;
  metadata: { name: string; namespace: string } | null;
  state: "SANDBOX_READY" | "SANDBOX_NOTREADY";
  annotations: Record<string, string>;
}

interface WireContainer {
  id: string;
  pod_sandbox_id: string;
  metadata: { name: string } | null;
  state: ContainerState;
  annotations: Record<string, string>;
}

interface WireContainerStatus {
  id: string;
  metadata: { name: string } | null;
  state: ContainerState;
  exit_code: number;
  reason: string;
  message: string;
  resources: { linux: WireResources | null } | null;
}

/** `address` is the path of containerd's gRPC unix socket. */
export function connectCri(address: string): CriClient {
  const definition = protoLoader.loadSync(protoPath, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  });
  const runtimeV1 = (grpc.loadPackageDefinition(definition).runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
  const target = `unix:${address}`;
  const credentials = grpc.credentials.createInsecure();
  const runtimeService = new (runtimeV1.RuntimeService as grpc.ServiceClientConstructor)(target, credentials);
  const imageService = new (runtimeV1.ImageService as grpc.ServiceClientConstructor)(target, credentials);
  const podConfigs = new Map<string, object>();
  const hostPidPods = new Set<string>();

  const call = <Response>(client: grpc.Client, method: string, request: object, timeoutMs = callTimeoutMs) =>
    new Promise<Response>((resolve, reject) => {
      const unary = (client as unknown as Record<string, UnaryMethod>)[method];
      unary.call(client, request, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(new Error(`CRI ${method} failed: ${error.details || error.message}`, { cause: error }));
        else resolve(response as Response);
      });
    });
  const runtime = <Response>(method: string, request: object, timeoutMs?: number) =>
    call<Response>(runtimeService, method, request, timeoutMs);

  const client: CriClient = {
    async version() {
      const response = await runtime<{ runtime_name: string; runtime_version: string; runtime_api_version: string }>(
        "Version",
        { version: "v1" },
      );
      return {
        runtimeName: response.runtime_name,
        runtimeVersion: response.runtime_version,
        runtimeApiVersion: response.runtime_api_version,
      };
    },

    async runPod(options) {
      const config = podSandboxConfig(options);
      const { pod_sandbox_id } = await runtime<{ pod_sandbox_id: string }>("RunPodSandbox", { config });
      podConfigs.set(pod_sandbox_id, config);
      if (options.hostPid) hostPidPods.add(pod_sandbox_id);
      return pod_sandbox_id;
    },

    async stopPod(podId) {
      await runtime("StopPodSandbox", { pod_sandbox_id: podId });
    },

    async removePod(podId) {
      await runtime("RemovePodSandbox", { pod_sandbox_id: podId });
      podConfigs.delete(podId);
    },

    async listPods() {
      const { items } = await runtime<{ items: WirePod[] }>("ListPodSandbox", {});
      return items.map((pod) => ({
        id: pod.id,
        name: pod.metadata?.name ?? "",
        namespace: pod.metadata?.namespace ?? "",
        ready: pod.state === "SANDBOX_READY",
        annotations: pod.annotations,
      }));
    },

    async createContainer(podId, options) {
      const sandboxConfig = podConfigs.get(podId);
      // CreateContainer must repeat the pod's config; only pods made here are known.
      if (sandboxConfig === undefined) throw new Error(`CRI CreateContainer: pod ${podId} was not created by this client`);
      const { container_id } = await runtime<{ container_id: string }>("CreateContainer", {
        pod_sandbox_id: podId,
        config: containerConfig(options, hostPidPods.has(podId)),
        sandbox_config: sandboxConfig,
      });
      return container_id;
    },

    async startContainer(containerId) {
      await runtime("StartContainer", { container_id: containerId });
    },

    async stopContainer(containerId, timeoutSeconds = 0) {
      await runtime("StopContainer", { container_id: containerId, timeout: timeoutSeconds }, callTimeoutMs + timeoutSeconds * 1000);
    },

    async removeContainer(containerId) {
      await runtime("RemoveContainer", { container_id: containerId });
    },

    async listContainers(podId) {
      const filter = podId === undefined ? {} : { filter: { pod_sandbox_id: podId } };
      const { containers } = await runtime<{ containers: WireContainer[] }>("ListContainers", filter);
      return containers.map((container) => ({
        id: container.id,
        podId: container.pod_sandbox_id,
        name: container.metadata?.name ?? "",
        state: container.state,
        annotations: container.annotations,
      }));
    },

    async containerStatus(containerId) {
      const { status } = await runtime<{ status: WireContainerStatus | null }>("ContainerStatus", { container_id: containerId });
      if (status === null) throw new Error(`CRI ContainerStatus: no status for container ${containerId}`);
      const linux = status.resources?.linux ?? null;
      return {
        id: status.id,
        name: status.metadata?.name ?? "",
        state: status.state,
        exitCode: status.exit_code,
        reason: status.reason,
        message: status.message,
        resources: linux === null ? {} : fromWireResources(linux),
      };
    },

    async updateContainerResources(containerId, resources) {
      await runtime("UpdateContainerResources", { container_id: containerId, linux: linuxResources(resources) });
    },

    async execSync(containerId, cmd, timeoutSeconds = 30) {
      const response = await runtime<{ stdout: Buffer; stderr: Buffer; exit_code: number }>(
        "ExecSync",
        { container_id: containerId, cmd, timeout: timeoutSeconds },
        timeoutSeconds * 1000 + callTimeoutMs,
      );
      return { stdout: response.stdout.toString("utf8"), stderr: response.stderr.toString("utf8"), exitCode: response.exit_code };
    },

    async listImages() {
      const { images } = await call<{ images: { repo_tags: string[] }[] }>(imageService, "ListImages", {});
      return images.flatMap((image) => image.repo_tags);
    },

    async teardown() {
      const failures: string[] = [];
      const attempt = async (what: string, action: () => Promise<void>) => {
        try {
          await action();
        } catch (error) {
          failures.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
        }
      };
      for (const pod of await client.listPods()) {
        await attempt(`stop pod ${pod.id}`, () => client.stopPod(pod.id));
        await attempt(`remove pod ${pod.id}`, () => client.removePod(pod.id));
      }
      for (const container of await client.listContainers()) {
        await attempt(`remove container ${container.id}`, async () => {
          await client.stopContainer(container.id, 0);
          await client.removeContainer(container.id);
        });
      }
      if (failures.length > 0) throw new Error(`CRI teardown incomplete:\n${failures.join("\n")}`);
    },

    close() {
      runtimeService.close();
      imageService.close();
    },
  };
  return client;
}

function podSandboxConfig(options: PodOptions): object {
  if (options.name === "") throw new Error("CRI pod needs a name");
  const namespace = options.namespace ?? "default";
  const network = options.hostNetwork === false ? "POD" : "NODE";
  return {
    metadata: { name: options.name, namespace, uid: options.uid ?? `${namespace}-${options.name}`, attempt: 0 },
    // No hostname: with the host's network namespace there is no private UTS namespace to name.
    log_directory: options.logDirectory ?? "",
    labels: options.labels ?? {},
    annotations: options.annotations ?? {},
    linux: {
      cgroup_parent: options.cgroupParent ?? "",
      security_context: { namespace_options: { network, pid: options.hostPid ? "NODE" : "POD", ipc: "POD" }, privileged: options.privileged ?? false },
    },
  };
}

const propagations = { None: "PROPAGATION_PRIVATE", HostToContainer: "PROPAGATION_HOST_TO_CONTAINER", Bidirectional: "PROPAGATION_BIDIRECTIONAL" } as const;

function containerConfig(options: ContainerOptions, hostPid: boolean): object {
  if (options.name === "") throw new Error("CRI container needs a name");
  if (options.image === "") throw new Error(`CRI container ${options.name} needs an image`);
  return {
    metadata: { name: options.name, attempt: 0 },
    image: { image: options.image },
    command: options.command ?? [],
    args: options.args ?? [],
    envs: Object.entries(options.env ?? {}).map(([key, value]) => ({ key, value })),
    log_path: options.logPath ?? "",
    mounts: (options.mounts ?? []).map((mount) => ({
      container_path: mount.containerPath,
      host_path: mount.hostPath,
      readonly: mount.readonly ?? false,
      propagation: propagations[mount.propagation ?? "None"],
    })),
    labels: options.labels ?? {},
    annotations: options.annotations ?? {},
    linux: {
      resources: linuxResources(options),
      security_context: {
        // As kubelet does: a container of a hostPID pod shares the host's pid namespace.
        namespace_options: { network: "NODE", pid: hostPid ? "NODE" : "CONTAINER", ipc: "POD" },
        privileged: options.privileged ?? false,
        readonly_rootfs: options.readonlyRootfs ?? false,
        no_new_privs: options.noNewPrivileges ?? false,
        capabilities: { add_capabilities: [], drop_capabilities: options.dropCapabilities ?? [] },
      },
    },
  };
}

function linuxResources(resources: ContainerResources): object {
  const integer = (name: string, value: number | undefined): number => {
    if (value === undefined) return 0;
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`CRI resource ${name} must be a non-negative integer, got ${value}`);
    return value;
  };
  return {
    memory_limit_in_bytes: integer("memoryLimitBytes", resources.memoryLimitBytes),
    cpu_quota: integer("cpuQuota", resources.cpuQuota),
    cpu_period: integer("cpuPeriod", resources.cpuPeriod),
    cpu_shares: integer("cpuShares", resources.cpuShares),
    cpuset_cpus: resources.cpusetCpus ?? "",
  };
}

function fromWireResources(wire: WireResources): ContainerResources {
  const resources: ContainerResources = {};
  if (wire.memory_limit_in_bytes !== "0") resources.memoryLimitBytes = Number(wire.memory_limit_in_bytes);
  if (wire.cpu_quota !== "0") resources.cpuQuota = Number(wire.cpu_quota);
  if (wire.cpu_period !== "0") resources.cpuPeriod = Number(wire.cpu_period);
  if (wire.cpu_shares !== "0") resources.cpuShares = Number(wire.cpu_shares);
  if (wire.cpuset_cpus !== "") resources.cpusetCpus = wire.cpuset_cpus;
  return resources;
}

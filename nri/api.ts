/**
 * The NRI and ttrpc messages as TypeScript shapes, and their protobuf codec, loaded
 * from proto/*.proto at start-up (no generated code, no build step).
 *
 * Decoded objects keep the proto field names (snake_case), carry 64-bit integers as
 * decimal strings (so memory limits above 2^53 stay exact) and enums as numbers; every
 * field is optional because runtimes of other NRI versions omit or add fields.
 */

import { readFileSync } from "node:fs";
import protobuf from "protobufjs";

export const nriPackage = "nri.pkg.api.v1alpha1";

const moduleUrl = import.meta.url;

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  for (const file of ["nri.proto", "ttrpc.proto"]) {
    const text = readFileSync(new URL(`../proto/${file}`, moduleUrl), "utf8");
    protobuf.parse(text, root, { keepCase: true });
  }
  root.resolveAll();
  return root;
}

const root = loadRoot();

export interface Codec<T> {
  encode(value: T): Uint8Array;
  /** Throws on bytes that are not a valid encoding of the message. */
  decode(bytes: Uint8Array): T;
}

const decodeOptions: protobuf.IConversionOptions = { longs: String, enums: Number, defaults: false };

/** The codec of the message named `fullName` (e.g. "ttrpc.Request"). */
export function codecOf<T>(fullName: string): Codec<T> {
  const type = root.lookupType(fullName);
  return {
    encode: (value) => type.encode(type.fromObject(value as Record<string, unknown>)).finish(),
    decode: (bytes) => type.toObject(type.decode(bytes), decodeOptions) as T,
  };
}

/** The codec of an NRI message by its short name ("CreateContainerRequest"). */
export function nriCodec<T>(name: string): Codec<T> {
  return codecOf<T>(`${nriPackage}.${name}`);
}

/** The Event enum: StateChange events and the bit positions of the Configure mask. */
export const NriEvent = {
  RUN_POD_SANDBOX: 1,
  STOP_POD_SANDBOX: 2,
  REMOVE_POD_SANDBOX: 3,
  CREATE_CONTAINER: 4,
  POST_CREATE_CONTAINER: 5,
  START_CONTAINER: 6,
  POST_START_CONTAINER: 7,
  UPDATE_CONTAINER: 8,
  POST_UPDATE_CONTAINER: 9,
  STOP_CONTAINER: 10,
  REMOVE_CONTAINER: 11,
} as const;

export type NriEventNumber = (typeof NriEvent)[keyof typeof NriEvent];

export const ContainerState = {
  UNKNOWN: 0,
  CREATED: 1,
  PAUSED: 2,
  RUNNING: 3,
  STOPPED: 4,
} as const;

export interface OptionalValue<T> {
  value?: T;
}

export interface LinuxMemory {
  limit?: OptionalValue<string>;
  reservation?: OptionalValue<string>;
  swap?: OptionalValue<string>;
  kernel?: OptionalValue<string>;
  kernel_tcp?: OptionalValue<string>;
  swappiness?: OptionalValue<string>;
  disable_oom_killer?: OptionalValue<boolean>;
  use_hierarchy?: OptionalValue<boolean>;
}

export interface LinuxCPU {
  shares?: OptionalValue<string>;
  quota?: OptionalValue<string>;
  period?: OptionalValue<string>;
  realtime_runtime?: OptionalValue<string>;
  realtime_period?: OptionalValue<string>;
  cpus?: string;
  mems?: string;
}

export interface LinuxResources {
  memory?: LinuxMemory;
  cpu?: LinuxCPU;
  hugepage_limits?: { page_size?: string; limit?: string }[];
  blockio_class?: OptionalValue<string>;
  rdt_class?: OptionalValue<string>;
  unified?: Record<string, string>;
}

export interface LinuxPodSandbox {
  pod_overhead?: LinuxResources;
  pod_resources?: LinuxResources;
  cgroup_parent?: string;
  cgroups_path?: string;
  resources?: LinuxResources;
}

export interface PodSandbox {
  id?: string;
  name?: string;
  uid?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  runtime_handler?: string;
  linux?: LinuxPodSandbox;
  pid?: number;
}

export interface Mount {
  destination?: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface LinuxContainer {
  namespaces?: { type?: string; path?: string }[];
  resources?: LinuxResources;
  oom_score_adj?: OptionalValue<string>;
  cgroups_path?: string;
}

export interface Container {
  id?: string;
  pod_sandbox_id?: string;
  name?: string;
  state?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  args?: string[];
  env?: string[];
  mounts?: Mount[];
  linux?: LinuxContainer;
  pid?: number;
}

export interface KeyValue {
  key?: string;
  value?: string;
}

export interface ContainerAdjustment {
  annotations?: Record<string, string>;
  mounts?: Mount[];
  env?: KeyValue[];
}

export interface ContainerUpdate {
  container_id?: string;
  linux?: { resources?: LinuxResources };
  ignore_failure?: boolean;
}

export interface ContainerEviction {
  container_id?: string;
  reason?: string;
}

export interface RegisterPluginRequest {
  plugin_name?: string;
  plugin_idx?: string;
}

export interface UpdateContainersRequest {
  update?: ContainerUpdate[];
  evict?: ContainerEviction[];
}

export interface UpdateContainersResponse {
  failed?: ContainerUpdate[];
}

export interface ConfigureRequest {
  config?: string;
  runtime_name?: string;
  runtime_version?: string;
  registration_timeout?: string;
  request_timeout?: string;
}

export interface ConfigureResponse {
  events?: number;
}

export interface SynchronizeRequest {
  pods?: PodSandbox[];
  containers?: Container[];
  more?: boolean;
}

export interface SynchronizeResponse {
  update?: ContainerUpdate[];
  more?: boolean;
}

export interface CreateContainerRequest {
  pod?: PodSandbox;
  container?: Container;
}

export interface CreateContainerResponse {
  adjust?: ContainerAdjustment;
  update?: ContainerUpdate[];
  evict?: ContainerEviction[];
}

export interface UpdateContainerRequest {
  pod?: PodSandbox;
  container?: Container;
  linux_resources?: LinuxResources;
}

export interface UpdateContainerResponse {
  update?: ContainerUpdate[];
  evict?: ContainerEviction[];
}

export interface StopContainerRequest {
  pod?: PodSandbox;
  container?: Container;
}

export interface StopContainerResponse {
  update?: ContainerUpdate[];
}

export interface StateChangeEvent {
  event?: number;
  pod?: PodSandbox;
  container?: Container;
}

export type Empty = Record<string, never>;

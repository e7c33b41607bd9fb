/**
 * CreateContainer and lifecycle events read for the pod's and container's identity alone
 * (wire.ts): ids, names, namespace, uid, labels, annotations, state, pid and cgroup paths.
 * The rest (args, env, mounts, resources, hooks, …) is skipped, so a plugin that opts in
 * (NriPlugin.eventFields = "identity") sees those fields absent.
 */

import type { CreateContainerRequest, StateChangeEvent } from "./api-types.ts";
import { readMessage, type WireSchema } from "./wire.ts";

const podSandbox: WireSchema = {
  1: ["id", "string"],
  2: ["name", "string"],
  3: ["uid", "string"],
  4: ["namespace", "string"],
  5: ["labels", "string map"],
  6: ["annotations", "string map"],
  7: ["runtime_handler", "string"],
  8: ["linux", { message: { 3: ["cgroup_parent", "string"], 4: ["cgroups_path", "string"] } }],
  9: ["pid", "uint32"],
};

const container: WireSchema = {
  1: ["id", "string"],
  2: ["pod_sandbox_id", "string"],
  3: ["name", "string"],
  4: ["state", "int32"],
  5: ["labels", "string map"],
  6: ["annotations", "string map"],
  11: ["linux", { message: { 5: ["cgroups_path", "string"] } }],
  12: ["pid", "uint32"],
};

const createContainerRequest: WireSchema = { 1: ["pod", { message: podSandbox }], 2: ["container", { message: container }] };
const stateChangeEvent: WireSchema = { 1: ["event", "int32"], 2: ["pod", { message: podSandbox }], 3: ["container", { message: container }] };

/** Also reads the runtime's dedicated lifecycle requests (PostCreateContainer, RemoveContainer, …): {pod = 1, container = 2}. */
export function readCreateContainerIdentity(bytes: Uint8Array): CreateContainerRequest {
  return readMessage(createContainerRequest, bytes);
}

export function readStateChangeIdentity(bytes: Uint8Array): StateChangeEvent {
  return readMessage(stateChangeEvent, bytes);
}

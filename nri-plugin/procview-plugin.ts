/**
 * procview's NRI policy: at CreateContainer, record where the container's cgroup is
 * (for the FUSE server) and bind the FUSE-served views over its /proc files.
 *
 * The plugin never fails a container: when the FUSE server is not serving, or anything
 * else goes wrong, the container starts without the views (it then sees the host's
 * /proc, as without procview) and the reason is logged.
 */

import { cgroupRelativePath } from "../core/cgroup-path.ts";
import { checkFuseLiveness, hostLivenessProbe, type Liveness } from "../core/fuse-status.ts";
import type { Logger } from "../core/log.ts";
import { ContainerRegistry, isValidContainerId, type ContainerRecord } from "../core/registry.ts";
import { containerViewSource, viewFiles } from "../core/views.ts";
import { decideViews, type DefaultPolicy } from "./annotations.ts";
import { ContainerState, NriEvent, type Container, type Mount, type PodSandbox } from "./api.ts";
import type { NriPlugin } from "./stub.ts";

/** Where records go; ContainerRegistry in production, a fake in tests. */
export type RecordStore = Pick<ContainerRegistry, "put" | "remove">;

export interface ProcviewPluginOptions {
  mountpoint: string;
  stateDir: string;
  logger: Logger;
  /** Containers without a procview annotation get views ("all", the default) or not ("opted-in"). */
  defaultPolicy?: DefaultPolicy;
  store?: RecordStore;
  liveness?: () => Liveness;
  now?: () => number;
}

/** The read-only binds of every view file, sourced from the container's directory in the FUSE tree. */
export function viewMounts(mountpoint: string, containerId: string): Mount[] {
  return viewFiles.map((view) => ({
    destination: view.target,
    type: "bind",
    source: containerViewSource(mountpoint, containerId, view),
    // "ro" alone fails in runc, "bind" alone lets the container write through to the host.
    options: ["bind", "ro"],
  }));
}

/**
 * The registry record of a container. Throws on an id that cannot name a FUSE path or
 * a container without any cgroup path.
 */
export function containerRecordOf(pod: PodSandbox | undefined, container: Container, recordedAt: number): ContainerRecord {
  const id = container.id ?? "";
  if (!isValidContainerId(id)) throw new Error(`invalid container id ${JSON.stringify(id)}`);
  return {
    id,
    cgroupPath: cgroupRelativePath(runtimeCgroupsPath(pod, container)),
    name: container.name,
    pod: { name: pod?.name, namespace: pod?.namespace, uid: pod?.uid },
    recordedAt,
  };
}

/** The container's cgroups_path; older runtimes leave it empty, and the cgroupfs layout is <parent>/<id>. */
function runtimeCgroupsPath(pod: PodSandbox | undefined, container: Container): string {
  const own = container.linux?.cgroups_path ?? "";
  if (own !== "") return own;
  const parent = pod?.linux?.cgroup_parent ?? "";
  if (parent === "") throw new Error("neither the container's cgroups_path nor the pod's cgroup_parent is set");
  return `${parent.replace(/\/+$/, "")}/${container.id}`;
}

function logFieldsOf(pod: PodSandbox | undefined, container: Container | undefined): Record<string, unknown> {
  return {
    pod: pod?.name,
    namespace: pod?.namespace,
    container: container?.name,
    containerId: container?.id,
  };
}

export function createProcviewPlugin(options: ProcviewPluginOptions): NriPlugin {
  const { mountpoint, logger } = options;
  const store = options.store ?? new ContainerRegistry(options.stateDir);
  const liveness = options.liveness ?? (() => checkFuseLiveness(mountpoint, hostLivenessProbe(options.stateDir)));
  const now = options.now ?? Date.now;
  const defaultPolicy = options.defaultPolicy ?? "all";

  const wantsViews = (pod: PodSandbox | undefined, container: Container): boolean => {
    const decision = decideViews(pod?.annotations, container.name ?? "", defaultPolicy);
    if (decision.invalid) {
      logger.warn("ignoring a procview annotation with a value other than enabled/disabled; using the default", {
        ...logFieldsOf(pod, container),
        annotation: decision.invalid.annotation,
        value: decision.invalid.value,
        defaultPolicy,
      });
    }
    if (!decision.enabled) logger.info("procview views disabled for this container", { ...logFieldsOf(pod, container), decidedBy: decision.decidedBy });
    return decision.enabled;
  };

  return {
    configure(request) {
      logger.info("NRI plugin configured", { runtime: request.runtime_name, runtimeVersion: request.runtime_version, mountpoint });
    },

    synchronize(pods, containers) {
      const podsById = new Map(pods.map((pod) => [pod.id, pod]));
      let recorded = 0;
      for (const container of containers) {
        // Stopped containers have no mount namespace left to serve.
        if (container.state === ContainerState.STOPPED) continue;
        const pod = podsById.get(container.pod_sandbox_id);
        try {
          store.put(containerRecordOf(pod, container, now()));
          recorded++;
        } catch (err) {
          logger.error("cannot record a running container", { ...logFieldsOf(pod, container), error: err });
        }
      }
      logger.info("re-recorded running containers", { recorded, containers: containers.length });
      return [];
    },

    createContainer({ pod, container }) {
      const fields = logFieldsOf(pod, container);
      try {
        if (!container) throw new Error("CreateContainer carried no container");
        if (!wantsViews(pod, container)) return {};
        const live = liveness();
        if (!live.live) {
          logger.warn("FUSE server not serving; container starts without procview views", { ...fields, reason: live.reason });
          return {};
        }
        const record = containerRecordOf(pod, container, now());
        // The record must exist before runc binds the views: the FUSE tree serves only recorded containers.
        store.put(record);
        logger.info("binding procview views", { ...fields, cgroupPath: record.cgroupPath });
        return { adjust: { mounts: viewMounts(mountpoint, record.id) } };
      } catch (err) {
        logger.error("cannot give the container procview views; it starts without them", { ...fields, error: err });
        return {};
      }
    },

    updateContainer() {
      // Limits are read from the cgroup at every read of a view: nothing to store.
      return {};
    },

    // A stopped container keeps its record: only REMOVE_CONTAINER means it is gone for good.
    stateChangeEvents: [NriEvent.REMOVE_CONTAINER],
    stateChange({ event, pod, container }) {
      if (event !== NriEvent.REMOVE_CONTAINER || !container?.id) return;
      try {
        store.remove(container.id);
        logger.debug("forgot removed container", logFieldsOf(pod, container));
      } catch (err) {
        logger.error("cannot remove a container record", { ...logFieldsOf(pod, container), error: err });
      }
    },
  };
}

/**
 * procview's NRI policy: at CreateContainer, record where the container's cgroup is
 * (for the FUSE server) and bind the FUSE-served views over its /proc files.
 *
 * The plugin never fails a container: when the FUSE server is not serving, or anything
 * else goes wrong, the container starts without the views (it then sees the host's
 * /proc, as without procview) and the reason is logged.
 */

import { checkFuseLiveness, hostLivenessProbe, reusingAnswers, statfsAnswers, type Liveness } from "../core/fuse-status.ts";
import type { Logger } from "../core/log.ts";
import { containerRecord, ContainerRegistry, type ContainerRecord } from "../core/registry.ts";
import { viewMounts } from "../core/views.ts";
import { ContainerState, NriEvent, type Container, type PodSandbox } from "../nri/api.ts";
import { ConfigError, mergeSettings, parsePluginConfig, type PluginSettings, type PluginSettingsLayer } from "./config.ts";
import { decide, type ViewDecision } from "./decision.ts";
import type { NriPlugin } from "../nri/stub.ts";
import { viewFilesNamed } from "./view-selection.ts";
import { healRunningContainers, type RunningContainerViews } from "./heal-running.ts";

/** Where records go; ContainerRegistry in production, a fake in tests. */
export type RecordStore = Pick<ContainerRegistry, "put" | "remove">;

export interface ProcviewPluginOptions {
  mountpoint: string;
  stateDir: string;
  logger: Logger;
  /** Settings from --config FILE: below the config string of containerd's Configure. */
  fileSettings?: PluginSettingsLayer;
  /** Settings from flags: above every other source (see config.ts). */
  flagSettings?: PluginSettingsLayer;
  store?: RecordStore;
  liveness?: () => Liveness | Promise<Liveness>;
  /**
   * Whether this instance is the node's active plugin (nri-plugin/instance-lock.ts); an
   * inactive one (a pre-launched plugin while another is active) binds and records nothing.
   */
  isActive?: () => boolean;
  now?: () => number;
  /** Gives running containers (from Synchronize) the views they lack; heal-running.ts by default. */
  healRunning?: (containers: RunningContainerViews[]) => Promise<void>;
}

export { viewMounts };

/**
 * The registry record of a container. Throws on an id that cannot name a FUSE path or
 * a container without any cgroup path.
 */
export function containerRecordOf(
  pod: PodSandbox | undefined,
  container: Container,
  recordedAt: number,
  cpuLimitByQuota?: boolean,
): ContainerRecord {
  const identity = {
    id: container.id ?? "",
    cgroupsPath: runtimeCgroupsPath(pod, container),
    name: container.name,
    pod: { name: pod?.name, namespace: pod?.namespace, uid: pod?.uid },
  };
  return containerRecord(identity, recordedAt, cpuLimitByQuota);
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

/** Containers asked about at CreateContainer and not yet created: a bound in case a creation fails before POST_CREATE. */
const maxPendingCreations = 1024;

/**
 * How long the FUSE mount's answer to a statfs is believed: "answered" for 1 s (a burst of
 * containers costs one probe); "does not answer" for 3 s, so that while it hangs each
 * container does not wait out a probe of its own (containerd asks about one at a time).
 */
const reuse = { answeredMs: 1000, unansweredMs: 3000 };

export function createProcviewPlugin(options: ProcviewPluginOptions): NriPlugin {
  const { mountpoint, logger } = options;
  const store = options.store ?? new ContainerRegistry(options.stateDir);
  const probe = hostLivenessProbe(options.stateDir, reusingAnswers(statfsAnswers, reuse));
  const liveness = options.liveness ?? (() => checkFuseLiveness(mountpoint, probe));
  const now = options.now ?? Date.now;
  const isActive = options.isActive ?? (() => true);
  /** Ids this instance answered CreateContainer for, until their POST_CREATE_CONTAINER. */
  const askedAbout = new Set<string>();
  const fileSettings = options.fileSettings ?? {};
  const flagSettings = options.flagSettings ?? {};
  let settings: PluginSettings = mergeSettings(fileSettings, flagSettings);
  const healRunning = options.healRunning ?? ((containers) => healRunningContainers(containers, mountpoint, logger));

  /** After Synchronize answered: containers created while we (or the FUSE server) were down get their views in place. */
  const healWhenServing = async (containers: RunningContainerViews[]): Promise<void> => {
    const live = await liveness();
    if (!live.live) {
      logger.warn("FUSE server not serving; running containers stay without procview views until the plugin synchronizes again", { reason: live.reason });
      return;
    }
    await healRunning(containers).catch((error: unknown) => logger.error("cannot heal running containers", { error }));
  };

  /** The decision for the container (pod and container annotations, settings), its unreadable annotations logged. */
  const decisionFor = (pod: PodSandbox | undefined, container: Container): ViewDecision => {
    const decision = decide(pod, container, settings);
    for (const invalid of decision.invalid) {
      logger.warn("ignoring a procview annotation that cannot be read; using the default", {
        ...logFieldsOf(pod, container),
        annotation: invalid.annotation,
        value: invalid.value,
        reason: invalid.reason,
      });
    }
    return decision;
  };

  return {
    configure(request) {
      const config = request.config ?? "";
      // External plugins get an empty string; only a pre-launched plugin's conf.d file fills it.
      if (config.trim() !== "") {
        try {
          settings = mergeSettings(fileSettings, parsePluginConfig(config), flagSettings);
        } catch (err) {
          // Failing Configure would drop the plugin (and a pre-launched plugin's failure stops containerd): keep going.
          logger.error("ignoring the plugin config from the runtime; keeping the previous settings", {
            key: err instanceof ConfigError ? err.key : undefined,
            error: err,
          });
        }
      }
      logger.info("NRI plugin configured", {
        runtime: request.runtime_name,
        runtimeVersion: request.runtime_version,
        mountpoint,
        defaultPolicy: settings.defaultPolicy,
        views: settings.views,
        cpuByQuota: settings.cpuByQuota,
      });
    },

    synchronize(pods, containers) {
      if (!isActive()) return [];
      const podsById = new Map(pods.map((pod) => [pod.id, pod]));
      let recorded = 0;
      const toHeal: RunningContainerViews[] = [];
      for (const container of containers) {
        // Stopped containers have no mount namespace left to serve.
        if (container.state === ContainerState.CONTAINER_STOPPED) continue;
        const pod = podsById.get(container.pod_sandbox_id);
        try {
          const decision = decisionFor(pod, container);
          // Only containers that get views have records (procview status counts a record without binds as missing).
          if (!decision.bind) continue;
          const record = containerRecordOf(pod, container, now(), decision.cpuByQuota);
          store.put(record);
          recorded++;
          if (container.state === ContainerState.CONTAINER_RUNNING) {
            const binds = viewMounts(mountpoint, record.id, viewFilesNamed(decision.views)).map((mount) => ({ source: mount.source ?? "", target: mount.destination ?? "" }));
            toHeal.push({ containerId: record.id, pid: container.pid, cgroupPath: record.cgroupPath, binds });
          }
        } catch (err) {
          logger.error("cannot record a running container", { ...logFieldsOf(pod, container), error: err });
        }
      }
      logger.info("re-recorded running containers", { recorded, containers: containers.length });
      if (toHeal.length > 0) void healWhenServing(toHeal);
      return [];
    },

    async createContainer({ pod, container }) {
      const fields = logFieldsOf(pod, container);
      try {
        if (!container) throw new Error("CreateContainer carried no container");
        if (container.id) {
          askedAbout.add(container.id);
          if (askedAbout.size > maxPendingCreations) askedAbout.delete(askedAbout.values().next().value!);
        }
        if (!isActive()) {
          logger.info("another procview NRI plugin is active: this one adds no views", fields);
          return {};
        }
        const decision = decisionFor(pod, container);
        if (!decision.bind) {
          logger.info("procview views disabled for this container", { ...fields, decidedBy: decision.decidedBy, reason: decision.reason });
          return {};
        }
        const live = await liveness();
        if (!live.live) {
          logger.warn("FUSE server not serving; container starts without procview views", { ...fields, reason: live.reason });
          return {};
        }
        const views = viewFilesNamed(decision.views);
        const record = containerRecordOf(pod, container, now(), decision.cpuByQuota);
        // The record must exist before runc binds the views: the FUSE tree serves only recorded containers.
        store.put(record);
        logger.info("binding procview views", {
          ...fields,
          cgroupPath: record.cgroupPath,
          views: views.map((view) => view.target),
          cpuLimitByQuota: record.cpuLimitByQuota,
        });
        return { adjust: { mounts: viewMounts(mountpoint, record.id, views) } };
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
    // POST_CREATE_CONTAINER tells of containers created without asking us (see below).
    stateChangeEvents: [NriEvent.POST_CREATE_CONTAINER, NriEvent.REMOVE_CONTAINER],
    stateChange({ event, pod, container }) {
      if (!container?.id) return;
      if (event === NriEvent.POST_CREATE_CONTAINER) {
        // containerd adds a (re)connected plugin only after its Synchronize returns: a container whose
        // CreateContainer ran in between was created without us, and this connection's Synchronize did not list it.
        if (askedAbout.delete(container.id) || !isActive()) return;
        if (!decide(pod, container, settings).bind) return;
        logger.warn("container created while this plugin was not registered with the runtime: it runs without procview views", logFieldsOf(pod, container));
        return;
      }
      if (event !== NriEvent.REMOVE_CONTAINER) return;
      askedAbout.delete(container.id);
      try {
        store.remove(container.id);
        logger.debug("forgot removed container", logFieldsOf(pod, container));
      } catch (err) {
        logger.error("cannot remove a container record", { ...logFieldsOf(pod, container), error: err });
      }
    },
  };
}

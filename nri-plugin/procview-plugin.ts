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
import {
  ContainerState,
  NriEvent,
  type ConfigureRequest,
  type Container,
  type ContainerUpdate,
  type CreateContainerRequest,
  type CreateContainerResponse,
  type NriEventNumber,
  type PodSandbox,
  type StateChangeEvent,
} from "../nri/api.ts";
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

/** The FUSE server's liveness as the host shows it (core/fuse-status.ts), its probe set up once. */
function hostLiveness(mountpoint: string, stateDir: string): () => Promise<Liveness> {
  const probe = hostLivenessProbe(stateDir, reusingAnswers(statfsAnswers, reuse), { byDevice: true });
  return () => checkFuseLiveness(mountpoint, probe);
}

/** How long the FUSE mount's answer to a statfs is believed: a burst of containers costs one probe. */
const reuse = { answeredMs: 1000 };

/**
 * The plugin the NRI stub drives (containerd/nri's template shape): which containers get
 * which views is decide()'s pure answer; the handlers below record, bind and log it.
 */
export class ProcviewPlugin implements NriPlugin {
  // A stopped container keeps its record: only REMOVE_CONTAINER means it is gone for good.
  // Every subscribed event is a round trip containerd waits for (POST_CREATE_CONTAINER one more inside CreateContainer).
  readonly stateChangeEvents: readonly NriEventNumber[] = [NriEvent.REMOVE_CONTAINER];
  // decide() and the record read names, annotations, state, pid and cgroup paths alone.
  readonly eventFields = "identity";
  readonly #mountpoint: string;
  readonly #logger: Logger;
  readonly #store: RecordStore;
  readonly #liveness: () => Liveness | Promise<Liveness>;
  readonly #now: () => number;
  readonly #isActive: () => boolean;
  readonly #healRunning: (containers: RunningContainerViews[]) => Promise<void>;
  readonly #fileSettings: PluginSettingsLayer;
  readonly #flagSettings: PluginSettingsLayer;
  #settings: PluginSettings;

  constructor(options: ProcviewPluginOptions) {
    const { mountpoint, logger } = options;
    this.#mountpoint = mountpoint;
    this.#logger = logger;
    this.#store = options.store ?? new ContainerRegistry(options.stateDir);
    this.#liveness = options.liveness ?? hostLiveness(mountpoint, options.stateDir);
    this.#now = options.now ?? Date.now;
    this.#isActive = options.isActive ?? (() => true);
    this.#healRunning = options.healRunning ?? ((containers) => healRunningContainers(containers, mountpoint, logger));
    this.#fileSettings = options.fileSettings ?? {};
    this.#flagSettings = options.flagSettings ?? {};
    this.#settings = mergeSettings(this.#fileSettings, this.#flagSettings);
  }

  configure(request: ConfigureRequest): void {
    const config = request.config ?? "";
    // External plugins get an empty string; only a pre-launched plugin's conf.d file fills it.
    if (config.trim() !== "") {
      try {
        this.#settings = mergeSettings(this.#fileSettings, parsePluginConfig(config), this.#flagSettings);
      } catch (err) {
        // Failing Configure would drop the plugin (and a pre-launched plugin's failure stops containerd): keep going.
        this.#logger.error("ignoring the plugin config from the runtime; keeping the previous settings", {
          key: err instanceof ConfigError ? err.key : undefined,
          error: err,
        });
      }
    }
    const settings = this.#settings;
    this.#logger.info("NRI plugin configured", {
      runtime: request.runtime_name,
      runtimeVersion: request.runtime_version,
      mountpoint: this.#mountpoint,
      defaultPolicy: settings.defaultPolicy,
      views: settings.views,
      cpuByQuota: settings.cpuByQuota,
    });
  }

  synchronize(pods: PodSandbox[], containers: Container[]): ContainerUpdate[] {
    if (!this.#isActive()) return [];
    const podsById = new Map(pods.map((pod) => [pod.id, pod]));
    let recorded = 0;
    const toHeal: RunningContainerViews[] = [];
    for (const container of containers) {
      // Stopped containers have no mount namespace left to serve.
      if (container.state === ContainerState.CONTAINER_STOPPED) continue;
      const pod = podsById.get(container.pod_sandbox_id);
      try {
        const decision = this.#decisionFor(pod, container);
        // Only containers that get views have records (procview status counts a record without binds as missing).
        if (!decision.bind) continue;
        const record = containerRecordOf(pod, container, this.#now(), decision.cpuByQuota);
        this.#store.put(record);
        recorded++;
        if (container.state === ContainerState.CONTAINER_RUNNING) {
          const binds = viewMounts(this.#mountpoint, record.id, viewFilesNamed(decision.views)).map((mount) => ({ source: mount.source ?? "", target: mount.destination ?? "" }));
          toHeal.push({ containerId: record.id, pid: container.pid, cgroupPath: record.cgroupPath, binds });
        }
      } catch (err) {
        this.#logger.error("cannot record a running container", { ...logFieldsOf(pod, container), error: err });
      }
    }
    this.#logger.info("re-recorded running containers", { recorded, containers: containers.length });
    if (toHeal.length > 0) void this.#healWhenServing(toHeal);
    return [];
  }

  async createContainer({ pod, container }: CreateContainerRequest): Promise<CreateContainerResponse> {
    const fields = logFieldsOf(pod, container);
    try {
      if (!container) throw new Error("CreateContainer carried no container");
      if (!this.#isActive()) {
        this.#logger.info("another procview NRI plugin is active: this one adds no views", fields);
        return {};
      }
      const decision = this.#decisionFor(pod, container);
      if (!decision.bind) {
        this.#logger.info("procview views disabled for this container", { ...fields, decidedBy: decision.decidedBy, reason: decision.reason });
        return {};
      }
      const live = await this.#liveness();
      if (!live.live) {
        this.#logger.warn("FUSE server not serving; container starts without procview views", { ...fields, reason: live.reason });
        return {};
      }
      const views = viewFilesNamed(decision.views);
      const record = containerRecordOf(pod, container, this.#now(), decision.cpuByQuota);
      // The record must exist before runc binds the views: the FUSE tree serves only recorded containers.
      this.#store.put(record);
      this.#logger.info("binding procview views", {
        ...fields,
        cgroupPath: record.cgroupPath,
        views: views.map((view) => view.target),
        cpuLimitByQuota: record.cpuLimitByQuota,
      });
      return { adjust: { mounts: viewMounts(this.#mountpoint, record.id, views) } };
    } catch (err) {
      this.#logger.error("cannot give the container procview views; it starts without them", { ...fields, error: err });
      return {};
    }
  }

  stateChange({ event, pod, container }: StateChangeEvent): void {
    if (!container?.id || event !== NriEvent.REMOVE_CONTAINER) return;
    try {
      this.#store.remove(container.id);
      this.#logger.debug("forgot removed container", logFieldsOf(pod, container));
    } catch (err) {
      this.#logger.error("cannot remove a container record", { ...logFieldsOf(pod, container), error: err });
    }
  }

  /** After Synchronize answered: containers created while we (or the FUSE server) were down get their views in place. */
  async #healWhenServing(containers: RunningContainerViews[]): Promise<void> {
    const live = await this.#liveness();
    if (!live.live) {
      this.#logger.warn("FUSE server not serving; running containers stay without procview views until the plugin synchronizes again", { reason: live.reason });
      return;
    }
    await this.#healRunning(containers).catch((error: unknown) => this.#logger.error("cannot heal running containers", { error }));
  }

  /** The decision for the container (pod and container annotations, settings), its unreadable annotations logged. */
  #decisionFor(pod: PodSandbox | undefined, container: Container): ViewDecision {
    const decision = decide(pod, container, this.#settings);
    for (const invalid of decision.invalid) {
      this.#logger.warn("ignoring a procview annotation that cannot be read; using the default", {
        ...logFieldsOf(pod, container),
        annotation: invalid.annotation,
        value: invalid.value,
        reason: invalid.reason,
      });
    }
    return decision;
  }
}

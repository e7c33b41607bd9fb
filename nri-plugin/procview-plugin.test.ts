import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger, type Logger } from "../core/log.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { viewFiles } from "../core/views.ts";
import type { Liveness } from "../core/fuse-status.ts";
import { ContainerState, NriEvent, type Container, type PodSandbox } from "../nri/api.ts";
import { containerRecordOf, ProcviewPlugin, viewMounts, type ProcviewPluginOptions } from "./procview-plugin.ts";
import type { RunningContainerViews } from "./heal-running.ts";
import { eventMask, type NriPlugin } from "../nri/stub.ts";

const mountpoint = "/var/lib/procview";
const id = "0123456789abcdef";
const pod: PodSandbox = {
  id: "pod-1",
  name: "web",
  namespace: "shop",
  uid: "uid-1",
  linux: { cgroup_parent: "/kubepods/burstable/pod-uid-1" },
};
const container: Container = {
  id,
  pod_sandbox_id: "pod-1",
  name: "nginx",
  linux: { cgroups_path: `/kubepods/burstable/pod-uid-1/${id}` },
};
const live: Liveness = { live: true, status: { pid: 1, mountpoint, startedAt: 0 } };

interface Fixture {
  plugin: NriPlugin;
  registry: ContainerRegistry;
  logs: () => Record<string, unknown>[];
  stateDir: string;
  /** What Synchronize handed to healRunning (never the real one here: it would bind into host processes). */
  healed: RunningContainerViews[];
}

function withPlugin(options: Partial<ProcviewPluginOptions>, body: (f: Fixture) => Promise<void> | void) {
  return async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "procview-plugin-"));
    const lines: string[] = [];
    const healed: RunningContainerViews[] = [];
    const logger: Logger = createLogger({ level: "debug", write: (line) => lines.push(line) });
    try {
      const healRunning = async (containers: RunningContainerViews[]) => void healed.push(...containers);
      const plugin = new ProcviewPlugin({ mountpoint, stateDir, logger, liveness: () => live, now: () => 1234, healRunning, ...options });
      await body({
        healed,
        plugin,
        registry: new ContainerRegistry(stateDir),
        logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
        stateDir,
      });
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  };
}

test("viewMounts binds every view file read-only from the container's FUSE directory", () => {
  const mounts = viewMounts("/var/lib/procview/", id);
  assert.equal(mounts.length, viewFiles.length);
  assert.deepEqual(mounts[0], {
    destination: "/proc/meminfo",
    type: "bind",
    source: `/var/lib/procview/containers/${id}/proc/meminfo`,
    options: ["bind", "ro"],
  });
});

test("containerRecordOf reads cgroupfs and systemd cgroups paths and falls back to the pod's parent", () => {
  assert.equal(containerRecordOf(pod, container, 1).cgroupPath, `/kubepods/burstable/pod-uid-1/${id}`);
  const systemd = { ...container, linux: { cgroups_path: `kubepods-burstable-pod1.slice:cri-containerd:${id}` } };
  assert.equal(
    containerRecordOf(pod, systemd, 1).cgroupPath,
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-${id}.scope`,
  );
  const noPath = { ...container, linux: {} };
  assert.equal(containerRecordOf(pod, noPath, 1).cgroupPath, `/kubepods/burstable/pod-uid-1/${id}`);
  assert.throws(() => containerRecordOf({ ...pod, linux: {} }, noPath, 1), /cgroups_path/);
  assert.throws(() => containerRecordOf(pod, { ...container, id: "../etc" }, 1), /invalid container id/);
});

test(
  "CreateContainer records the container before answering, then answers the view mounts",
  withPlugin({}, async ({ plugin, registry, logs }) => {
    const response = await plugin.createContainer!({ pod, container });
    assert.deepEqual(response, { adjust: { mounts: viewMounts(mountpoint, id) } });
    assert.deepEqual(registry.get(id), {
      id,
      cgroupPath: `/kubepods/burstable/pod-uid-1/${id}`,
      name: "nginx",
      pod: { name: "web", namespace: "shop", uid: "uid-1" },
      recordedAt: 1234,
    });
    assert.ok(logs().some((r) => r.msg === "binding procview views" && r.pod === "web" && r.container === "nginx"));
  }),
);

test(
  "with the FUSE server down the container gets no mounts, no record, and the log says why",
  withPlugin({ liveness: () => ({ live: false, reason: "no FUSE server status file" }) }, async ({ plugin, registry, logs }) => {
    assert.deepEqual(await plugin.createContainer!({ pod, container }), {});
    assert.deepEqual(registry.ids(), []);
    const warning = logs().find((r) => r.level === "warn");
    assert.equal(warning?.reason, "no FUSE server status file");
    assert.equal(warning?.pod, "web");
    assert.equal(warning?.namespace, "shop");
    assert.equal(warning?.container, "nginx");
  }),
);

test(
  "an instance that is not the active plugin (pre-launched beside an active one) binds and records nothing",
  withPlugin({ isActive: () => false }, async ({ plugin, registry, logs }) => {
    assert.deepEqual(await plugin.createContainer!({ pod, container }), {});
    assert.deepEqual(await plugin.synchronize!([pod], [{ ...container, pod_sandbox_id: pod.id, state: ContainerState.CONTAINER_RUNNING }]), []);
    assert.deepEqual(registry.ids(), []);
    assert.ok(logs().some((r) => r.msg === "another procview NRI plugin is active: this one adds no views" && r.container === "nginx"));
  }),
);

test(
  "the default liveness check reads the real state dir: no FUSE status file means no mounts",
  withPlugin({ liveness: undefined }, async ({ plugin, registry }) => {
    assert.deepEqual(await plugin.createContainer!({ pod, container }), {});
    assert.deepEqual(registry.ids(), []);
  }),
);

test(
  "malformed requests get an empty adjustment and an error log, never an exception",
  withPlugin({}, async ({ plugin, registry, logs }) => {
    const malformed: Parameters<NonNullable<typeof plugin.createContainer>>[0][] = [
      {},
      { pod },
      { pod, container: { ...container, id: "../../etc" } },
      { pod, container: { ...container, id: "" } },
      { pod: { ...pod, linux: undefined }, container: { ...container, linux: undefined } },
      { pod, container: { ...container, linux: { cgroups_path: "/a/../../b" } } },
    ];
    for (const request of malformed) assert.deepEqual(await plugin.createContainer!(request), {});
    assert.deepEqual(registry.ids(), []);
    assert.equal(logs().filter((r) => r.level === "error").length, malformed.length);
  }),
);

test(
  "a registry that cannot be written means no mounts (the bind source would not exist)",
  withPlugin(
    {
      store: {
        put: () => {
          throw new Error("EROFS");
        },
        remove: () => {},
      },
    },
    async ({ plugin, logs }) => {
      assert.deepEqual(await plugin.createContainer!({ pod, container }), {});
      assert.match(JSON.stringify(logs().find((r) => r.level === "error")), /EROFS/);
    },
  ),
);

test(
  "annotations opt a container out, and under the opted-in policy only annotated ones get views",
  withPlugin({ flagSettings: { defaultPolicy: "opted-in" } }, async ({ plugin }) => {
    assert.deepEqual(await plugin.createContainer!({ pod, container }), {});
    const optedIn = { ...pod, annotations: { "procview.noderesource.dev/pod": "enabled" } };
    assert.ok((await plugin.createContainer!({ pod: optedIn, container })).adjust);
    const butNotThisOne = {
      ...optedIn,
      annotations: { ...optedIn.annotations, "procview.noderesource.dev/container.nginx": "disabled" },
    };
    assert.deepEqual(await plugin.createContainer!({ pod: butNotThisOne, container }), {});
  }),
);

test(
  "an unknown annotation value falls back to the default and warns naming pod and annotation",
  withPlugin({}, async ({ plugin, logs }) => {
    const typo = { ...pod, annotations: { "procview.noderesource.dev": "disable" } };
    assert.ok((await plugin.createContainer!({ pod: typo, container })).adjust);
    const warning = logs().find((r) => r.level === "warn");
    assert.equal(warning?.annotation, "procview.noderesource.dev");
    assert.equal(warning?.value, "disable");
    assert.equal(warning?.pod, "web");
  }),
);

test(
  "Synchronize re-records the containers that are not stopped and asks no updates",
  withPlugin({}, async ({ plugin, registry }) => {
    const running = { ...container, state: ContainerState.CONTAINER_RUNNING, pid: 42 };
    const stopped = { ...container, id: "stopped1", state: ContainerState.CONTAINER_STOPPED };
    const broken = { ...container, id: "bad/id", state: ContainerState.CONTAINER_RUNNING };
    assert.deepEqual(await plugin.synchronize!([pod], [running, stopped, broken]), []);
    assert.deepEqual(registry.ids(), [id]);
    assert.equal(registry.get(id)?.pod?.name, "web");
  }),
);

test(
  "the runtime asks only CreateContainer and tells only REMOVE_CONTAINER: each subscription costs every container a round trip",
  withPlugin({}, async ({ plugin }) => {
    const bit = (event: number) => 1 << (event - 1);
    assert.equal(eventMask(plugin), bit(NriEvent.CREATE_CONTAINER) | bit(NriEvent.REMOVE_CONTAINER));
  }),
);

test(
  "REMOVE_CONTAINER forgets the record; other events and StopContainer keep it",
  withPlugin({}, async ({ plugin, registry }) => {
    await plugin.createContainer!({ pod, container });
    assert.equal(plugin.stopContainer, undefined);
    for (const event of [NriEvent.POST_CREATE_CONTAINER, NriEvent.POST_START_CONTAINER, NriEvent.STOP_CONTAINER]) {
      await plugin.stateChange!({ event, pod, container });
    }
    assert.deepEqual(registry.ids(), [id]);
    await plugin.stateChange!({ event: NriEvent.REMOVE_CONTAINER, pod, container });
    assert.deepEqual(registry.ids(), []);
  }),
);

const targetsOf = (response: { adjust?: { mounts?: Array<{ destination?: string }> } }) => response.adjust?.mounts?.map((m) => m.destination);

test(
  "a views annotation binds only the chosen views, and cpu-by-quota travels in the record",
  withPlugin({}, async ({ plugin, registry }) => {
    const chosen = {
      ...pod,
      annotations: {
        "views.procview.noderesource.dev/container.nginx": "meminfo,cpuinfo",
        "cpu-by-quota.procview.noderesource.dev/pod": "true",
      },
    };
    assert.deepEqual(targetsOf(await plugin.createContainer!({ pod: chosen, container })), ["/proc/meminfo", "/proc/cpuinfo"]);
    assert.equal(registry.get(id)?.cpuLimitByQuota, true);
    await plugin.createContainer!({ pod, container });
    assert.equal(registry.get(id)?.cpuLimitByQuota, undefined, "without annotation or setting the FUSE server decides");
  }),
);

test(
  "malformed views and cpu-by-quota annotations leave the defaults and warn naming pod and annotation",
  withPlugin({}, async ({ plugin, registry, logs }) => {
    const malformed = {
      ...pod,
      annotations: { "views.procview.noderesource.dev/pod": "meminfo,vmstat", "cpu-by-quota.procview.noderesource.dev": "maybe" },
    };
    assert.equal(targetsOf(await plugin.createContainer!({ pod: malformed, container }))?.length, viewFiles.length);
    assert.equal(registry.get(id)?.cpuLimitByQuota, undefined);
    const warnings = logs().filter((r) => r.level === "warn");
    assert.deepEqual(
      warnings.map((w) => [w.pod, w.namespace, w.annotation, w.value]),
      [
        ["web", "shop", "views.procview.noderesource.dev/pod", "meminfo,vmstat"],
        ["web", "shop", "cpu-by-quota.procview.noderesource.dev", "maybe"],
      ],
    );
    assert.match(String(warnings[0].reason), /unknown view "vmstat"/);
  }),
);

test(
  "settings: the file is overridden by Configure's config, which flags override",
  withPlugin(
    { fileSettings: { views: ["meminfo"], defaultPolicy: "opted-in", cpuByQuota: false }, flagSettings: { views: ["stat"] } },
    async ({ plugin, registry }) => {
      const optedIn = { ...pod, annotations: { "procview.noderesource.dev": "enabled" } };
      assert.deepEqual(targetsOf(await plugin.createContainer!({ pod: optedIn, container })), ["/proc/stat"]);
      assert.equal(registry.get(id)?.cpuLimitByQuota, false);
      await plugin.configure!({ config: "defaultPolicy: all\ncpuByQuota: true\nviews: [cpuinfo]\n", runtime_name: "containerd" });
      assert.deepEqual(targetsOf(await plugin.createContainer!({ pod, container })), ["/proc/stat"], "the views flag still wins");
      assert.equal(registry.get(id)?.cpuLimitByQuota, true);
    },
  ),
);

test(
  "a bad config from Configure is logged with its key and the previous settings stay",
  withPlugin({ fileSettings: { views: ["meminfo"] } }, async ({ plugin, logs }) => {
    await plugin.configure!({ config: "views: [cpuinfo]", runtime_name: "containerd" });
    await plugin.configure!({ config: "views: [cpuinfo]\ndefaultPolicy: everybody\n", runtime_name: "containerd" });
    const error = logs().find((r) => r.level === "error");
    assert.equal(error?.key, "defaultPolicy");
    assert.deepEqual(targetsOf(await plugin.createContainer!({ pod, container })), ["/proc/cpuinfo"]);
    await plugin.configure!({ config: "", runtime_name: "containerd" });
    assert.deepEqual(targetsOf(await plugin.createContainer!({ pod, container })), ["/proc/cpuinfo"], "an empty config changes nothing");
  }),
);

test(
  "Synchronize hands running containers that want views, with their binds, to healing once the FUSE server serves",
  withPlugin({}, async ({ plugin, healed }) => {
    const running = { ...container, state: ContainerState.CONTAINER_RUNNING, pid: 42 };
    const created = { ...container, id: "created1", state: ContainerState.CONTAINER_CREATED };
    const stopped = { ...container, id: "stopped1", state: ContainerState.CONTAINER_STOPPED };
    const optedOut = { ...container, id: "optedout1", name: "agent", state: ContainerState.CONTAINER_RUNNING };
    const annotated = { ...pod, annotations: { "procview.noderesource.dev/container.agent": "disabled", "views.procview.noderesource.dev/container.nginx": "meminfo" } };
    await plugin.synchronize!([annotated], [running, created, stopped, optedOut]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(healed, [
      {
        containerId: id,
        pid: 42,
        cgroupPath: `/kubepods/burstable/pod-uid-1/${id}`,
        binds: [{ source: `${mountpoint}/containers/${id}/proc/meminfo`, target: "/proc/meminfo" }],
      },
    ]);
  }),
);

test(
  "Synchronize heals nothing while the FUSE server is not serving, and says so",
  withPlugin({ liveness: () => ({ live: false, reason: "no FUSE server status file" }) }, async ({ plugin, healed, logs }) => {
    await plugin.synchronize!([pod], [{ ...container, state: ContainerState.CONTAINER_RUNNING, pid: 42 }]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(healed, []);
    assert.ok(logs().some((r) => r.level === "warn" && String(r.msg).startsWith("FUSE server not serving; running containers stay without")));
  }),
);

test(
  "Synchronize keeps a container's cpu-by-quota choice in its record",
  withPlugin({ flagSettings: { cpuByQuota: true } }, async ({ plugin, registry }) => {
    const annotated = { ...pod, annotations: { "cpu-by-quota.procview.noderesource.dev/container.nginx": "false" } };
    const other = { ...container, id: "other1", name: "sidecar", state: ContainerState.CONTAINER_RUNNING };
    await plugin.synchronize!([annotated], [{ ...container, state: ContainerState.CONTAINER_RUNNING }, other]);
    assert.equal(registry.get(id)?.cpuLimitByQuota, false);
    assert.equal(registry.get("other1")?.cpuLimitByQuota, true);
  }),
);

test(
  "a container without a pod sandbox (Docker's NRI) is recorded and decided by its own annotations, which win over the pod's",
  withPlugin({ flagSettings: { defaultPolicy: "opted-in" } }, async ({ plugin, registry }) => {
    const alone = { ...container, pod_sandbox_id: "", annotations: { "procview.noderesource.dev": "enabled", "views.procview.noderesource.dev": "meminfo" } };
    assert.deepEqual(targetsOf(await plugin.createContainer!({ container: alone })), ["/proc/meminfo"]);
    assert.equal(registry.get(id)?.cgroupPath, `/kubepods/burstable/pod-uid-1/${id}`);
    assert.deepEqual(await plugin.createContainer!({ container: { ...alone, annotations: {} } }), {}, "opted-in: no annotation, no views");
    const podSaysNo = { ...pod, annotations: { "procview.noderesource.dev/pod": "disabled" } };
    assert.ok((await plugin.createContainer!({ pod: podSaysNo, container: alone })).adjust, "the container's annotation is the most specific");
    await plugin.synchronize!([], [{ ...alone, id: "alone2", state: ContainerState.CONTAINER_RUNNING }]);
    assert.ok(registry.get("alone2"), "Synchronize records containers whose pod it was not sent");
  }),
);

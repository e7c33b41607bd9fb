import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeFuseStatus, type Liveness } from "../core/fuse-status.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { viewFiles } from "../core/views.ts";
import type { RuncGlobals } from "./args.ts";
import { runcLog, runcLogLine } from "./log.ts";
import { addViewsToBundle, defaultRuntimeConfig, forgetDeleted, runtimeSettings, type Environment } from "./views.ts";

const mountpoint = "/var/lib/procview";
const live = (): Liveness => ({ live: true, status: { pid: 1, mountpoint, startedAt: 0 } });
const baseSpec = { ociVersion: "1.0.2-dev", mounts: [{ destination: "/proc", type: "proc", source: "proc" }], linux: { cgroupsPath: "/default/c1" } };

interface Fixture {
  bundle: string;
  env: Environment;
  configText: () => string;
  mountTargets: () => string[];
  logLines: () => Array<{ level: string; msg: string; time: string }>;
  registry: ContainerRegistry;
  add: (options?: { liveness?: () => Liveness; globals?: Partial<RuncGlobals> }) => Promise<boolean>;
}

function withBundle(annotations: Record<string, string>, body: (f: Fixture) => Promise<void>, spec: object = baseSpec) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "procview-runc-"));
    try {
      const bundle = join(dir, "bundle");
      const stateDir = join(dir, "state");
      const logFile = join(dir, "log.json");
      mkdirSync(bundle);
      writeFuseStatus(stateDir, { pid: process.pid, mountpoint, startedAt: 0 });
      writeFileSync(join(bundle, "config.json"), JSON.stringify({ ...spec, annotations }), { mode: 0o600 });
      const env: Environment = { PROCVIEW_STATE_DIR: stateDir, PROCVIEW_RUNC_CONFIG: join(dir, "procview-runc.yaml") };
      writeFileSync(env.PROCVIEW_RUNC_CONFIG!, "");
      const configText = () => readFileSync(join(bundle, "config.json"), "utf8");
      await body({
        bundle,
        env,
        configText,
        mountTargets: () => (JSON.parse(configText()) as { mounts: Array<{ destination: string }> }).mounts.map((m) => m.destination),
        logLines: () => {
          try {
            return readFileSync(logFile, "utf8").trim().split("\n").filter(Boolean).map((line) => JSON.parse(line));
          } catch {
            return [];
          }
        },
        registry: new ContainerRegistry(stateDir),
        add: (options = {}) => {
          const globals: RuncGlobals = { log: logFile, logFormat: "json", debug: false, systemdCgroup: false, ...options.globals };
          return addViewsToBundle({ id: "c1", bundle, globals, env, log: runcLog(globals), liveness: options.liveness ?? live, now: () => 42 });
        },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const allTargets = ["/proc", ...viewFiles.map((view) => view.target)];

test(
  "by default every view is bound read-only and the container recorded with its cgroup, config.json keeping its mode",
  withBundle({}, async ({ bundle, add, mountTargets, registry, logLines, configText }) => {
    assert.equal(await add(), true);
    assert.deepEqual(mountTargets(), allTargets);
    const meminfo = (JSON.parse(configText()) as { mounts: Array<{ source: string; options: string[] }> }).mounts[1];
    assert.deepEqual(meminfo, { destination: "/proc/meminfo", type: "bind", source: `${mountpoint}/containers/c1/proc/meminfo`, options: ["bind", "ro"] });
    assert.deepEqual(registry.get("c1"), { id: "c1", cgroupPath: "/default/c1", name: undefined, pod: {}, recordedAt: 42 });
    assert.equal(statSync(join(bundle, "config.json")).mode & 0o777, 0o600);
    assert.deepEqual(logLines(), [], "a container that gets its views logs nothing without --debug");
  }),
);

test(
  "annotations choose the views and the CPU count, and disable procview",
  withBundle({ "views.procview.noderesource.dev": "meminfo,cpu/online", "cpu-by-quota.procview.noderesource.dev": "true" }, async ({ add, mountTargets, registry }) => {
    assert.equal(await add(), true);
    assert.deepEqual(mountTargets(), ["/proc", "/proc/meminfo", "/sys/devices/system/cpu/online"]);
    assert.equal(registry.get("c1")?.cpuLimitByQuota, true);
  }),
);

test(
  "a disabled container is left alone, silently",
  withBundle({ "procview.noderesource.dev": "disabled" }, async ({ add, configText, registry, logLines }) => {
    const before = configText();
    assert.equal(await add(), false);
    assert.equal(configText(), before);
    assert.deepEqual(registry.ids(), []);
    assert.deepEqual(logLines(), []);
    assert.equal(await add({ globals: { debug: true } }), false);
    assert.match(logLines()[0].msg, /^procview: no views for container c1: container annotation procview.noderesource.dev disables procview$/);
  }),
);

test(
  "a bad annotation value warns and keeps the default",
  withBundle({ "procview.noderesource.dev": "yes please" }, async ({ add, mountTargets, logLines }) => {
    assert.equal(await add(), true);
    assert.deepEqual(mountTargets(), allTargets);
    const [line] = logLines();
    assert.equal(line.level, "warning");
    assert.match(line.msg, /ignoring container annotation procview.noderesource.dev="yes please" \(expected enabled or disabled\)/);
    assert.ok(!Number.isNaN(Date.parse(line.time)));
  }),
);

for (const [what, breakIt, reason] of [
  ["no FUSE server status", (f: Fixture) => rmSync(join(f.env.PROCVIEW_STATE_DIR!, "fuse.json")), /no FUSE server: .*fuse.json is missing/],
  ["a FUSE server that is gone", () => {}, /the FUSE server is not serving: FUSE server pid 7 is gone/],
  ["an unreadable settings file", (f: Fixture) => rmSync(f.env.PROCVIEW_RUNC_CONFIG!), /settings file .*procview-runc.yaml: ENOENT/],
  ["a bad setting", (f: Fixture) => writeFileSync(f.env.PROCVIEW_RUNC_CONFIG!, "defaultPolicy: sometimes\n"), /defaultPolicy: must be all or opted-in/],
  ["an unreadable config.json", (f: Fixture) => writeFileSync(join(f.bundle, "config.json"), "{not json"), /JSON/],
] as const) {
  test(
    `${what}: the container starts without views and one warning says why`,
    withBundle({}, async (f) => {
      breakIt(f);
      const before = (() => {
        try {
          return f.configText();
        } catch {
          return undefined;
        }
      })();
      assert.equal(await f.add({ liveness: () => ({ live: false, reason: "FUSE server pid 7 is gone" }) }), false);
      assert.equal(f.configText(), before);
      assert.deepEqual(f.registry.ids(), []);
      const lines = f.logLines();
      assert.equal(lines.length, 1);
      assert.equal(lines[0].level, "warning");
      assert.match(lines[0].msg, /^procview: container c1 starts without procview views: /);
      assert.match(lines[0].msg, reason);
    }),
  );
}

test(
  "no cgroups path under cgroupfs: no views; under systemd runc's default unit",
  withBundle({}, async ({ add, logLines, registry }) => {
    assert.equal(await add(), false);
    assert.match(logLines()[0].msg, /sets no linux.cgroupsPath/);
    assert.equal(await add({ globals: { systemdCgroup: true } }), true);
    assert.equal(registry.get("c1")?.cgroupPath, "/system.slice/runc-c1.scope");
  }, { mounts: [] }),
);

test(
  "a CRI sandbox (pause) container is left alone",
  withBundle({ "io.kubernetes.cri.container-type": "sandbox" }, async ({ add, registry }) => {
    assert.equal(await add(), false);
    assert.deepEqual(registry.ids(), []);
  }),
);

test(
  "a container the NRI plugin already gave views gets no second set",
  withBundle({}, async ({ add, configText }) => {
    const before = configText();
    assert.equal(await add(), false);
    assert.equal(configText(), before);
  }, { ...baseSpec, mounts: [{ destination: "/proc/meminfo", type: "bind", source: "/elsewhere" }] }),
);

test(
  "settings: the default file may be absent; opted-in needs the annotation",
  withBundle({}, async ({ env, add, registry }) => {
    if (!existsSync(defaultRuntimeConfig)) assert.equal(runtimeSettings({}).defaultPolicy, "all");
    writeFileSync(env.PROCVIEW_RUNC_CONFIG!, "defaultPolicy: opted-in\nviews: meminfo\n");
    assert.deepEqual(runtimeSettings(env), { defaultPolicy: "opted-in", views: ["meminfo"] });
    assert.equal(await add(), false);
    assert.deepEqual(registry.ids(), []);
  }),
);

test(
  "delete forgets the record unless runc still has the container",
  withBundle({}, async ({ add, env, registry }) => {
    await add();
    forgetDeleted("c1", env, true);
    assert.deepEqual(registry.ids(), ["c1"]);
    forgetDeleted("c1", env, false);
    assert.deepEqual(registry.ids(), []);
  }),
);

test("log lines as runc writes them: JSON {level, msg, time} or logrus text", () => {
  const time = new Date("2026-01-02T03:04:05.000Z");
  assert.equal(runcLogLine("json", "warning", 'a "b"', time), '{"level":"warning","msg":"a \\"b\\"","time":"2026-01-02T03:04:05.000Z"}\n');
  assert.equal(runcLogLine("text", "warning", 'a "b"', time), 'time="2026-01-02T03:04:05.000Z" level=warning msg="a \\"b\\""\n');
});

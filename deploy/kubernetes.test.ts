// The DaemonSet mounts exactly what the binary's defaults expect, with the privileges the
// docs claim, and runs the image the Containerfile builds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLimitedCgroup } from "../bench/limited-cgroup.ts";
import { parseAllDocuments } from "yaml";
import { defaultMountpoint, defaultNriSocket, parseCommandLine } from "../cli/args.ts";
import { defaultStateDir } from "../core/registry.ts";
import { decideViews } from "../nri-plugin/annotations.ts";

// Deno type-checks import.meta without `url` under this project's node-only types.
const moduleUrl = (import.meta as ImportMeta & { url: string }).url;

interface VolumeMount {
  name: string;
  mountPath: string;
  mountPropagation?: string;
  readOnly?: boolean;
}

interface Container {
  name: string;
  image: string;
  command: string[];
  args: string[];
  readinessProbe?: { exec?: { command: string[] } };
  securityContext?: { privileged?: boolean; capabilities?: { drop?: string[] } };
  resources?: { requests?: { cpu?: string; memory?: string } };
  volumeMounts: VolumeMount[];
}

interface Volume {
  name: string;
  hostPath: { path: string; type: string };
}

interface PodSpec {
  automountServiceAccountToken?: boolean;
  hostPID?: boolean;
  priorityClassName?: string;
  serviceAccountName?: string;
  containers: Container[];
  volumes: Volume[];
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: {
    template: { metadata?: { annotations?: Record<string, string> }; spec: PodSpec };
    updateStrategy?: { type: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } };
  };
}

function loadManifests(): Manifest[] {
  const documents = parseAllDocuments(readFileSync(new URL("./kubernetes/procview.yaml", moduleUrl), "utf8"));
  return documents.map((document) => {
    assert.deepEqual(document.errors, [], "the YAML must parse without errors");
    return document.toJS() as Manifest;
  });
}

const manifests = loadManifests();
const daemonSet = manifests.find((m) => m.kind === "DaemonSet");
const podSpec = daemonSet?.spec?.template.spec as PodSpec;

function container(name: string): Container {
  const found = podSpec.containers.find((c) => c.name === name);
  assert.ok(found, `no container named ${name}`);
  return found;
}

/** Host path behind a container's mount at `mountPath`, with the mount itself. */
function hostMount(c: Container, mountPath: string): { hostPath: string; type: string; mount: VolumeMount } {
  const mount = c.volumeMounts.find((m) => m.mountPath === mountPath);
  assert.ok(mount, `${c.name} does not mount ${mountPath}`);
  const volume = podSpec.volumes.find((v) => v.name === mount.name);
  assert.ok(volume?.hostPath, `volume ${mount.name} is not a hostPath`);
  return { hostPath: volume.hostPath.path, type: volume.hostPath.type, mount };
}

/** The procview command line a container runs: what follows the entry script. */
function procviewArgv(c: Container): string[] {
  const argv = [...c.command, ...c.args];
  const entry = argv.indexOf("/opt/procview/bin/procview.js");
  assert.ok(entry > 0 && argv[entry - 1] === "/usr/local/bin/node", `${c.name} must run the image's node on procview.js`);
  return argv.slice(entry + 1);
}

test("the manifest holds a Namespace and, in it, the DaemonSet, and no RBAC objects", () => {
  const namespace = manifests.find((m) => m.kind === "Namespace");
  assert.ok(namespace && daemonSet);
  assert.equal(daemonSet.metadata.namespace, namespace.metadata.name);
  assert.equal(namespace.metadata.labels?.["pod-security.kubernetes.io/enforce"], "privileged");
  assert.deepEqual(manifests.map((m) => m.kind).sort(), ["DaemonSet", "Namespace"]);
});

test("the pod has no API access, host PIDs and node-critical priority", () => {
  assert.equal(podSpec.automountServiceAccountToken, false);
  assert.equal(podSpec.serviceAccountName, undefined, "the namespace's default account, without a token, is enough");
  assert.equal(podSpec.hostPID, true, "the FUSE server reads /proc/<pid>/cgroup of host pids");
  assert.equal(podSpec.priorityClassName, "system-node-critical");
  assert.deepEqual(podSpec.containers.map((c) => c.name).sort(), ["fuse", "nri"]);
});

test("the fuse container serves the default mountpoint, mounted Bidirectional from the same host path", () => {
  const fuse = container("fuse");
  const command = parseCommandLine(procviewArgv(fuse), {});
  assert.equal(command.kind, "fuse");
  assert.ok(command.kind === "fuse");
  assert.equal(command.fuse.mountpoint, defaultMountpoint);
  assert.equal(command.fuse.stateDir, defaultStateDir);

  const mount = hostMount(fuse, command.fuse.mountpoint);
  assert.equal(mount.hostPath, defaultMountpoint, "containerd binds host paths: the host path must be the mountpoint");
  assert.equal(mount.mount.mountPropagation, "Bidirectional", "the mount must propagate back to the host");
  assert.equal(fuse.securityContext?.privileged, true, "Bidirectional propagation and mounting FUSE need privileged");

  const state = hostMount(fuse, command.fuse.stateDir);
  assert.equal(state.hostPath, defaultStateDir);
  const cgroup = hostMount(fuse, "/sys/fs/cgroup");
  assert.deepEqual([cgroup.hostPath, cgroup.type, cgroup.mount.readOnly], ["/sys/fs/cgroup", "Directory", true]);
  const devFuse = hostMount(fuse, "/dev/fuse");
  assert.deepEqual([devFuse.hostPath, devFuse.type], ["/dev/fuse", "CharDevice"]);
  assert.deepEqual(fuse.volumeMounts.map((m) => m.mountPath).sort(), ["/dev/fuse", "/run/procview", "/sys/fs/cgroup", "/var/lib/procview"]);
});

test("the fuse container joins the host's cgroup namespace before starting node", () => {
  const fuse = container("fuse");
  const nodeAt = fuse.command.indexOf("/usr/local/bin/node");
  const prefix = fuse.command.slice(0, nodeAt);
  assert.deepEqual(prefix, ["/usr/bin/nsenter", "--cgroup=/proc/1/ns/cgroup", "--"]);
  // The same prefix, run here with util-linux's nsenter, against a process in another cgroup
  // namespace (this machine's pid 1 may not be opened by the test): the program named
  // after "--" is run in that process's namespace.
  const other = spawn("/usr/bin/unshare", ["--cgroup", "/bin/sleep", "30"], { stdio: "ignore" });
  try {
    const namespaceFile = `/proc/${other.pid}/ns/cgroup`;
    const args = prefix.slice(1).map((arg) => arg.replace("/proc/1/ns/cgroup", namespaceFile));
    let target = readlinkSync(namespaceFile);
    for (let i = 0; i < 100 && target === readlinkSync("/proc/self/ns/cgroup"); i++) {
      execFileSync("/bin/sleep", ["0.02"]); // until unshare has made its namespace
      target = readlinkSync(namespaceFile);
    }
    assert.notEqual(target, readlinkSync("/proc/self/ns/cgroup"));
    const joined = execFileSync(prefix[0], [...args, "/usr/bin/readlink", "/proc/self/ns/cgroup"], { encoding: "utf8" });
    assert.equal(joined.trim(), target);
  } finally {
    other.kill();
  }
});

test("the nri container reaches the NRI socket through its host directory, and sees the FUSE mount", () => {
  const nri = container("nri");
  const command = parseCommandLine(procviewArgv(nri), {});
  assert.ok(command.kind === "nri");
  assert.equal(command.nri.socketPath, defaultNriSocket);
  assert.equal(command.nri.mountpoint, defaultMountpoint);
  assert.equal(command.nri.stateDir, defaultStateDir);

  const socketDir = defaultNriSocket.slice(0, defaultNriSocket.lastIndexOf("/"));
  const socket = hostMount(nri, socketDir);
  assert.deepEqual([socket.hostPath, socket.type], [socketDir, "DirectoryOrCreate"], "the directory, not the socket file");
  assert.ok(!podSpec.volumes.some((v) => v.hostPath.path === defaultNriSocket), "no volume may be the socket file itself");

  const view = hostMount(nri, defaultMountpoint);
  assert.equal(view.hostPath, defaultMountpoint);
  assert.equal(view.mount.mountPropagation, "HostToContainer", "the plugin must see the mount the fuse container makes");
  assert.equal(hostMount(nri, defaultStateDir).hostPath, defaultStateDir, "records go where the FUSE server reads them");
  assert.deepEqual(nri.volumeMounts.map((m) => m.mountPath).sort(), ["/run/procview", "/var/lib/procview", "/var/run/nri"]);

  assert.equal(nri.securityContext?.privileged, false);
  assert.deepEqual(nri.securityContext?.capabilities?.drop, ["ALL"]);
});

test("procview's own containers opt out of the views", () => {
  const annotations = daemonSet?.spec?.template.metadata?.annotations;
  for (const c of podSpec.containers) {
    assert.equal(decideViews(annotations, c.name, "all").enabled, false, `${c.name} would read /proc through procview`);
  }
});

test("every container requests resources and both run the same image", () => {
  for (const c of podSpec.containers) {
    assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${c.name} must request cpu and memory`);
  }
  assert.equal(new Set(podSpec.containers.map((c) => c.image)).size, 1);
});

test("the containers run the node and entry script the Containerfile installs", () => {
  const containerfile = readFileSync(new URL("./Containerfile", moduleUrl), "utf8");
  assert.match(containerfile, /^COPY --from=build \S+\/bin\/node \/usr\/local\/bin\/node$/m);
  assert.match(containerfile, /^COPY --from=build \/opt\/procview \/opt\/procview$/m);
  assert.match(containerfile, /^ENTRYPOINT \["\/usr\/local\/bin\/node", "\/opt\/procview\/bin\/procview\.js"\]$/m);
});

/**
 * Field names of the Kubernetes API objects the manifest uses (apps/v1 DaemonSet, core/v1
 * PodSpec, Container, …), limited to what a node agent may need. A misspelt field is
 * dropped by the API server with at most a warning, so the test rejects unknown ones.
 */
const knownFields: Record<string, readonly string[]> = {
  daemonSetSpec: ["selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"],
  podSpec: [
    "automountServiceAccountToken", "containers", "dnsPolicy", "hostIPC", "hostNetwork", "hostPID", "initContainers",
    "nodeSelector", "priorityClassName", "securityContext", "serviceAccountName", "terminationGracePeriodSeconds",
    "tolerations", "volumes",
  ],
  container: ["args", "command", "env", "image", "imagePullPolicy", "livenessProbe", "name", "readinessProbe", "resources", "securityContext", "startupProbe", "volumeMounts"],
  volumeMount: ["mountPath", "mountPropagation", "name", "readOnly", "subPath"],
  volume: ["hostPath", "name"],
  hostPath: ["path", "type"],
  securityContext: ["allowPrivilegeEscalation", "capabilities", "privileged", "readOnlyRootFilesystem", "runAsGroup", "runAsNonRoot", "runAsUser"],
  probe: ["exec", "failureThreshold", "initialDelaySeconds", "periodSeconds", "successThreshold", "timeoutSeconds"],
  resources: ["limits", "requests"],
};

function assertKnownFields(kind: string, object: object | undefined): void {
  if (!object) return;
  for (const key of Object.keys(object)) assert.ok(knownFields[kind].includes(key), `unknown ${kind} field: ${key}`);
}

test("the manifest uses only field names the Kubernetes API knows, and valid enum values", () => {
  const spec = daemonSet?.spec as unknown as Record<string, object>;
  assertKnownFields("daemonSetSpec", spec);
  assertKnownFields("podSpec", podSpec);
  for (const c of podSpec.containers) {
    assertKnownFields("container", c);
    assertKnownFields("securityContext", c.securityContext);
    assertKnownFields("resources", c.resources);
    assertKnownFields("probe", (c as unknown as Record<string, object | undefined>).readinessProbe);
    for (const mount of c.volumeMounts) {
      assertKnownFields("volumeMount", mount);
      if (mount.mountPropagation) assert.ok(["None", "HostToContainer", "Bidirectional"].includes(mount.mountPropagation));
    }
  }
  for (const volume of podSpec.volumes) {
    assertKnownFields("volume", volume);
    assertKnownFields("hostPath", volume.hostPath);
    assert.ok(["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"].includes(volume.hostPath.type));
  }
});

test("a rollout overlaps old and new pod on each node, and the new FUSE server takes the old one's connection over", () => {
  assert.deepEqual(daemonSet?.spec?.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  const command = parseCommandLine(procviewArgv(container("fuse")), {});
  assert.ok(command.kind === "fuse");
  assert.equal(command.fuse.replace, true, "the new pod's server takes over (a first one on the node mounts anew)");
  assert.equal(command.fuse.onReplaced, "wait", "a replaced server that exited would be restarted by the kubelet and take the connection back");
});

test("the fuse container is ready while a process of its own cgroup serves: the probe, run here", async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip("making a cgroup needs root");
    return;
  }
  const probe = container("fuse").readinessProbe?.exec?.command;
  assert.ok(probe);
  const dir = mkdtempSync(join(tmpdir(), "procview-probe-"));
  // A process in another cgroup stands for another container's (the old pod's) server.
  const elsewhere = createLimitedCgroup("procview-probe-", { memoryBytes: 64 * 1024 * 1024, cpus: "0", cpuQuotaUs: 100_000, cpuPeriodUs: 100_000 });
  const other = spawn("/bin/sleep", ["30"], { stdio: "ignore" });
  try {
    elsewhere.addProcess(other.pid!);
    const ready = (pidFileContent: string | undefined): boolean => {
      rmSync(join(dir, "fuse.pid"), { force: true });
      if (pidFileContent !== undefined) writeFileSync(join(dir, "fuse.pid"), pidFileContent);
      const [shell, ...args] = probe.map((arg) => arg.replaceAll(defaultStateDir, dir));
      return spawnSync(shell, args, { stdio: "ignore" }).status === 0;
    };
    // The probe's shell is this test's child, in this test's cgroup.
    assert.equal(ready(`${process.pid}\n`), true, "this cgroup's process serves");
    assert.equal(ready(`${other.pid}\n`), false, "another cgroup's process serves");
    assert.equal(ready(undefined), false, "nobody serves");
    assert.equal(ready("4194305\n"), false, "a pid that is gone");
  } finally {
    other.kill("SIGKILL");
    await new Promise((resolve) => other.once("exit", resolve));
    await elsewhere.remove();
    rmSync(dir, { recursive: true, force: true });
  }
});

// The DaemonSet mounts exactly what the binary's defaults expect, with the privileges the
// docs claim, and runs the image deploy/image.ts builds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { defaultMountpoint, defaultNriSocket, parseCommandLine } from "../cli/args.ts";
import { defaultStateDir } from "../core/registry.ts";
import { decideViews } from "../nri-plugin/annotations.ts";
import { procviewImageName } from "./image.ts";

/** Where deploy/image.ts puts the single executable. */
const imageExecutable = "/bin/procview";

const moduleUrl = import.meta.url;

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
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: { privileged?: boolean; capabilities?: { drop?: string[] } };
  resources?: { requests?: { cpu?: string; memory?: string } };
  volumeMounts: VolumeMount[];
}

interface Probe {
  httpGet?: { path: string; port: string | number };
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
  nodeSelector?: Record<string, string>;
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

/** The procview command line a container runs: what follows the image's executable. */
function procviewArgv(c: Container): string[] {
  const argv = [...c.command, ...c.args];
  const entry = argv.indexOf(imageExecutable);
  assert.ok(entry >= 0, `${c.name} must run the image's ${imageExecutable}`);
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

test("the fuse container joins the host's cgroup namespace before starting procview", () => {
  const fuse = container("fuse");
  const procviewAt = fuse.command.indexOf(imageExecutable);
  const prefix = fuse.command.slice(0, procviewAt);
  assert.deepEqual(prefix, ["/bin/nsenter", "--cgroup=/proc/1/ns/cgroup", "--"]);
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
    // The image's /bin/nsenter is this host's util-linux nsenter (deploy/image.ts).
    const joined = execFileSync("nsenter", [...args, "/usr/bin/readlink", "/proc/self/ns/cgroup"], { encoding: "utf8", timeout: 30_000 });
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
    assert.equal(decideViews({ pod: annotations, containerName: c.name }, "all").enabled, false, `${c.name} would read /proc through procview`);
  }
});

test("every container requests resources and both run the same image", () => {
  for (const c of podSpec.containers) {
    assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${c.name} must request cpu and memory`);
  }
  assert.equal(new Set(podSpec.containers.map((c) => c.image)).size, 1);
});

test("the containers run the image the build makes, on Linux nodes only", () => {
  for (const c of podSpec.containers) assert.equal(c.image, procviewImageName);
  assert.deepEqual(podSpec.nodeSelector, { "kubernetes.io/os": "linux" });
});

test("both containers have liveness and readiness probes on their own --metrics-address port", () => {
  const ports = new Set<number>();
  for (const c of podSpec.containers) {
    const command = parseCommandLine(procviewArgv(c), {});
    assert.ok((command.kind === "fuse" || command.kind === "nri") && command.metricsAddress, `${c.name} serves metrics`);
    const port = c.ports?.find((p) => p.containerPort === command.metricsAddress!.port);
    assert.ok(port, `${c.name} declares its metrics port`);
    ports.add(port.containerPort);
    // The fuse server is ready once it serves (mounted, or taken over); a surge rollout's new
    // plugin stands by unregistered until the old one exits, so the nri container's readiness is liveness.
    assert.deepEqual(c.readinessProbe?.httpGet, { path: c.name === "fuse" ? "/readyz" : "/healthz", port: port.name });
    assert.deepEqual(c.livenessProbe?.httpGet, { path: "/healthz", port: port.name });
  }
  assert.equal(ports.size, 2, "the two containers share the pod's network: different ports");
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
  container: ["args", "command", "env", "image", "imagePullPolicy", "livenessProbe", "name", "ports", "readinessProbe", "resources", "securityContext", "startupProbe", "volumeMounts"],
  containerPort: ["containerPort", "name", "protocol"],
  httpGet: ["path", "port", "scheme", "host"],
  volumeMount: ["mountPath", "mountPropagation", "name", "readOnly", "subPath"],
  volume: ["hostPath", "name"],
  hostPath: ["path", "type"],
  securityContext: ["allowPrivilegeEscalation", "capabilities", "privileged", "readOnlyRootFilesystem", "runAsGroup", "runAsNonRoot", "runAsUser"],
  probe: ["exec", "httpGet", "failureThreshold", "initialDelaySeconds", "periodSeconds", "successThreshold", "timeoutSeconds"],
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
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      assertKnownFields("probe", probe);
      assertKnownFields("httpGet", probe?.httpGet);
    }
    for (const port of c.ports ?? []) assertKnownFields("containerPort", port);
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

interface Kustomization {
  resources: string[];
  configMapGenerator: { name: string; literals: string[] }[];
  replacements: { source: { name: string; fieldPath: string }; targets: { select: { kind: string; name: string }; fieldPaths: string[] }[] }[];
}

/** The value at a kustomize fieldPath (`a.b.[name=x].c.2`) in `object`. */
function atFieldPath(object: unknown, fieldPath: string): unknown {
  let value = object;
  for (const part of fieldPath.split(".")) {
    const selector = /^\[(\w+)=(.+)\]$/.exec(part);
    if (selector) value = (value as Record<string, unknown>[]).find((item) => item[selector[1]] === selector[2]);
    else value = (value as Record<string, unknown>)[/^\d+$/.test(part) ? Number(part) : part];
    assert.notEqual(value, undefined, `${fieldPath}: nothing at ${part}`);
  }
  return value;
}

test("the kustomize base writes its mountpoint, policy and views values where the manifest has their defaults", () => {
  const kustomization = parseAllDocuments(readFileSync(new URL("./kubernetes/kustomization.yaml", moduleUrl), "utf8"))[0].toJS() as Kustomization;
  assert.deepEqual(kustomization.resources, ["procview.yaml"]);
  const values: Record<string, string> = Object.fromEntries(kustomization.configMapGenerator[0].literals.map((literal) => literal.split("=", 2)));
  assert.deepEqual(values, { mountpoint: defaultMountpoint, defaultPolicy: "all", views: "all" });
  const flagOf: Record<string, string> = { mountpoint: "--mountpoint", defaultPolicy: "--default-policy", views: "--views" };
  const covered = new Set<string>();
  for (const { source, targets } of kustomization.replacements) {
    const key = source.fieldPath.replace(/^data\./, "");
    for (const target of targets) {
      assert.deepEqual(target.select, { kind: "DaemonSet", name: daemonSet?.metadata.name });
      for (const fieldPath of target.fieldPaths) {
        assert.equal(atFieldPath(daemonSet, fieldPath), (values as Record<string, string>)[key], `${fieldPath} holds the default ${key}`);
        covered.add(fieldPath);
        const arg = /^(.*\.args)\.(\d+)$/.exec(fieldPath);
        if (arg) assert.equal(atFieldPath(daemonSet, `${arg[1]}.${Number(arg[2]) - 1}`), flagOf[key], `${fieldPath} is the value of ${flagOf[key]}`);
      }
    }
  }
  // Every place the manifest names the mountpoint is replaced (args, mounts, the volume).
  const mountpointPlaces = [...JSON.stringify(daemonSet).matchAll(new RegExp(`"${defaultMountpoint}"`, "g"))].length;
  assert.equal([...covered].filter((path) => atFieldPath(daemonSet, path) === defaultMountpoint).length, mountpointPlaces);
});

test("a rollout overlaps old and new pod on each node, and the new FUSE server takes the old one's connection over", () => {
  assert.deepEqual(daemonSet?.spec?.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  const command = parseCommandLine(procviewArgv(container("fuse")), {});
  assert.ok(command.kind === "fuse");
  assert.equal(command.fuse.replace, true, "the new pod's server takes over (a first one on the node mounts anew)");
  assert.equal(command.fuse.onReplaced, "wait", "a replaced server that exited would be restarted by the kubelet and take the connection back");
});

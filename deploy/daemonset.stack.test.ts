/**
 * The DaemonSet of deploy/kubernetes/procview.yaml, run from the image the build makes,
 * through the CRI the way kubelet runs it: `npm run build` output and deploy/image.ts's
 * OCI image imported into a private containerd with NRI, the pod with its two containers
 * created from the manifest (hostPID, the privileged fuse container with its Bidirectional
 * mount, the unprivileged nri container), probed on their httpGet endpoints until ready;
 * then a pod with a memory limit reads its own MemTotal.
 *
 * Two deliberate differences from a real node, both forced by sharing this machine: the
 * manifest's host paths (/var/lib/procview, /run/procview, /var/run/nri) are private
 * folders, and /var/lib/procview is renamed inside the containers too, because the plugin
 * binds the mountpoint's path as the runtime sees it;
 * and containerd runs in its own mount namespace (integration/containerd.ts), which is
 * "the host" its containers propagate to, so the Bidirectional mount is looked for there.
 * Pods share the host's network (no CNI here): the metrics ports are free ones. And this
 * machine's pid 1 cannot be opened (see kubernetes.test.ts), so the fuse container's nsenter
 * joins the cgroup namespace of this test's process instead, the one containerd's
 * cgroups are seen from.
 */

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { procviewMountpoints } from "../core/fuse-status.ts";
import { startContainerd, type Containerd } from "../integration/containerd.ts";
import { connectCri, type ContainerMount, type CriClient } from "../integration/cri.ts";
import { debianPackage } from "../integration/debian-packages.ts";
import { freePort } from "../integration/free-port.ts";
import { buildProcviewImage, procviewImageName } from "./image.ts";

const execFileAsync = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const readyTimeoutMs = 60_000;

interface ManifestContainer {
  name: string;
  image: string;
  command: string[];
  args: string[];
  securityContext?: { privileged?: boolean; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
  resources?: { limits?: { memory?: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  ports: { name: string; containerPort: number }[];
  volumeMounts: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[];
}

interface ManifestPod {
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: { hostPID?: boolean; containers: ManifestContainer[]; volumes: { name: string; hostPath: { path: string } }[] };
}

const manifest = parseAllDocuments(readFileSync(join(root, "deploy/kubernetes/procview.yaml"), "utf8"))
  .map((document) => document.toJS() as { kind: string; metadata: { namespace?: string }; spec?: { template: ManifestPod } })
  .find((m) => m.kind === "DaemonSet")!;
const template = manifest.spec!.template;

let work: string;
let containerd: Containerd | undefined;
let cri: CriClient | undefined;
let hostMount: string;
const containerIds = new Map<string, string>();


function bytes(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  assert.ok(match, `memory quantity ${quantity}`);
  return Number(match[1]) * (match[2] === "Gi" ? 1024 ** 3 : 1024 ** 2);
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, logs: () => string): Promise<T> {
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`${what} within ${readyTimeoutMs} ms\n${logs()}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "procview-daemonset-"));
  const dist = join(work, "dist");
  const built = spawnSync(process.execPath, [join(root, "scripts/build.ts"), "--out", dist], { encoding: "utf8", timeout: 300_000 });
  assert.equal(built.status, 0, `npm run build failed:\n${built.stdout}${built.stderr}`);
  const imageTar = join(work, "procview-image.tar");
  buildProcviewImage(join(dist, "procview"), imageTar);

  const shared = join(work, "shared");
  hostMount = join(shared, "var-lib-procview");
  mkdirSync(hostMount, { recursive: true });
  mkdirSync(join(work, "nri"));
  containerd = await startContainerd({ sharedDirs: [shared], nriSocket: join(work, "nri", "nri.sock") });
  // A Bidirectional mount needs a shared source: in containerd's namespace the folder is a
  // slave of the host's copy; making it shared there too lets mounts made in a container
  // come back to containerd's namespace, as on a systemd host where / is shared.
  await execFileAsync("nsenter", ["-t", String(containerd.pid), "-m", "--", "mount", "--make-shared", shared]);
  const ctr = join(await debianPackage("containerd", "trixie"), "usr/bin/ctr");
  await execFileAsync(ctr, ["--address", containerd.criAddress, "--namespace", "k8s.io", "images", "import", imageTar]);
  cri = connectCri(containerd.criAddress);
  await eventually("the imported procview image in the CRI", async () => ((await cri!.listImages()).includes(procviewImageName) ? true : undefined), () => containerd!.logTail());
});

after(async () => {
  // As kubelet stops a pod: SIGTERM with the grace period, so the FUSE server unmounts.
  for (const id of containerIds.values()) await cri?.stopContainer(id, 20).catch(() => {});
  await cri?.teardown().catch(() => {});
  cri?.close();
  if (containerd) {
    const leftover = procviewMountpoints(readFileSync(`/proc/${containerd.pid}/mountinfo`, "utf8")).filter((m) => m.startsWith(work));
    for (const mountpoint of leftover) await execFileAsync("nsenter", ["-t", String(containerd.pid), "-m", "--", "umount", "-l", mountpoint]).catch(() => {});
  }
  await containerd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the DaemonSet's pod runs from the built image; a pod with a memory limit sees it as MemTotal", async () => {
  assert.ok(containerd && cri);
  const state = join(work, "state");
  const hostPaths: Record<string, string> = { "/var/lib/procview": hostMount, "/run/procview": state, "/var/run/nri": join(work, "nri") };
  const toHost = (path: string) => hostPaths[path] ?? path;
  const rewrite = (text: string) => (text === "/var/lib/procview" ? hostMount : text);
  const ports = new Map<number, number>();
  for (const c of template.spec.containers) for (const p of c.ports) ports.set(p.containerPort, await freePort());
  const rewriteArg = (arg: string) => {
    const metrics = /^:(\d+)$/.exec(arg);
    return metrics ? `:${ports.get(Number(metrics[1]))}` : rewrite(arg);
  };
  const rewriteCommand = (arg: string) => arg.replace("/proc/1/ns/cgroup", `/proc/${process.pid}/ns/cgroup`);

  const podId = await cri.runPod({
    name: "procview-node-1",
    namespace: manifest.metadata.namespace,
    annotations: template.metadata.annotations,
    labels: template.metadata.labels,
    hostPid: template.spec.hostPID,
    privileged: template.spec.containers.some((c) => c.securityContext?.privileged),
    cgroupParent: containerd.cgroupParent,
    logDirectory: join(work, "logs"),
  });
  for (const c of template.spec.containers) {
    assert.equal(c.image, procviewImageName);
    const mounts: ContainerMount[] = c.volumeMounts.map((m) => ({
      containerPath: rewrite(m.mountPath),
      hostPath: toHost(template.spec.volumes.find((v) => v.name === m.name)!.hostPath.path),
      readonly: m.readOnly ?? false,
      propagation: (m.mountPropagation ?? "None") as ContainerMount["propagation"],
    }));
    const id = await cri.createContainer(podId, {
      name: c.name,
      image: c.image,
      command: c.command.map(rewriteCommand),
      args: c.args.map(rewriteArg),
      mounts,
      privileged: c.securityContext?.privileged ?? false,
      readonlyRootfs: c.securityContext?.readOnlyRootFilesystem ?? false,
      noNewPrivileges: c.securityContext?.allowPrivilegeEscalation === false,
      dropCapabilities: c.securityContext?.capabilities?.drop,
      memoryLimitBytes: c.resources?.limits?.memory ? bytes(c.resources.limits.memory) : undefined,
      logPath: `${c.name}.log`,
    });
    containerIds.set(c.name, id);
    await cri.startContainer(id);
  }
  const containerLog = (name: string) => {
    try {
      return readFileSync(join(work, "logs", `${name}.log`), "utf8").split("\n").slice(-15).join("\n");
    } catch {
      return "(no log)";
    }
  };
  const logs = () => template.spec.containers.map((c) => `--- ${c.name} ---\n${containerLog(c.name)}`).join("\n") + `\n--- containerd ---\n${containerd!.logTail(10)}`;

  // kubelet's httpGet probes, on each container's named port.
  const probe = async (c: ManifestContainer, kind: "readinessProbe" | "livenessProbe") => {
    const { path, port } = c[kind].httpGet;
    const number = ports.get(c.ports.find((p) => p.name === port)!.containerPort)!;
    const response = await fetch(`http://127.0.0.1:${number}${path}`, { signal: AbortSignal.timeout(5_000) });
    return { status: response.status, body: await response.text() };
  };
  for (const c of template.spec.containers) {
    await eventually(`${c.name} ready`, async () => ((await probe(c, "readinessProbe")).status === 200 ? true : undefined), logs);
    assert.equal((await probe(c, "livenessProbe")).status, 200);
  }
  const fuse = template.spec.containers.find((c) => c.name === "fuse")!;
  const nri = template.spec.containers.find((c) => c.name === "nri")!;
  // The nri container's probe is /healthz (a surge rollout's new plugin stands by unregistered); /readyz says it registered.
  const nriPort = ports.get(nri.ports.find((p) => p.name === nri.readinessProbe.httpGet.port)!.containerPort)!;
  await eventually("the plugin registered", async () => {
    const response = await fetch(`http://127.0.0.1:${nriPort}/readyz`, { signal: AbortSignal.timeout(5_000) });
    return /registered with containerd/.test(await response.text()) ? true : undefined;
  }, logs);

  // The Bidirectional mount reached containerd's namespace, where runc binds its files.
  assert.ok(procviewMountpoints(readFileSync(`/proc/${containerd.pid}/mountinfo`, "utf8")).includes(hostMount), "the FUSE mount is seen outside the fuse container");

  const workload = await cri.runPod({ name: "memtest", cgroupParent: containerd.cgroupParent });
  const memtest = await cri.createContainer(workload, {
    name: "memtest",
    image: containerd.images.busybox,
    command: ["sleep", "600"],
    memoryLimitBytes: 64 * 1024 * 1024,
  });
  await cri.startContainer(memtest);
  const meminfo = await cri.execSync(memtest, ["head", "-n", "1", "/proc/meminfo"]);
  assert.equal(meminfo.stdout, "MemTotal:          65536 kB\n");

  // The operator's view from inside the fuse container: everything healthy, one container served.
  const status = await cri.execSync(containerIds.get("fuse")!, ["/bin/procview", "status"]);
  assert.equal(status.exitCode, 0, status.stdout + status.stderr);
  assert.match(status.stdout, /^NRI plugin: .*connected to containerd /m);
  assert.match(status.stdout, /^containers: 1 recorded, 1 served, 0 stale, 0 missing, 0 exited$/m);

  const metrics = await fetch(`http://127.0.0.1:${ports.get(nri.ports[0]!.containerPort)}/metrics`).then((r) => r.text());
  assert.match(metrics, /^procview_nri_events_total\{event="create_container",result="ok"\} 1$/m);
  const fuseMetrics = await fetch(`http://127.0.0.1:${ports.get(fuse.ports[0]!.containerPort)}/metrics`).then((r) => r.text());
  assert.match(fuseMetrics, /^procview_view_reads_total\{view="proc\/meminfo",layout="containers"\} 1$/m);
  assert.match(fuseMetrics, /^procview_containers 1$/m);
});

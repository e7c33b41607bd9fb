import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { containerdConfigToml, type ContainerdConfig } from "./containerd-config.ts";

const config: ContainerdConfig = {
  root: "/tmp/c/root",
  state: "/tmp/c/state",
  grpcAddress: "/tmp/c/containerd.sock",
  ttrpcAddress: "/tmp/c/containerd.sock.ttrpc",
  optDir: "/tmp/c/opt",
  nriSocket: "/tmp/c/nri.sock",
  nriPluginPath: "/tmp/c/nri/plugins",
  nriPluginConfigPath: "/tmp/c/nri/conf.d",
  cniBinDir: "/tmp/c/cni/bin",
  cniConfDir: "/tmp/c/cni/conf",
  runcBinary: '/cache/with "quote"/runc',
  sandboxImage: "localhost/procview/pause:test",
  logLevel: "debug",
};

type Table = Record<string, unknown>;
/** smol-toml makes null-prototype tables; copy into plain objects to compare them. */
const table = (value: unknown, ...path: string[]): Table =>
  JSON.parse(JSON.stringify(path.reduce((node, key) => (node as Table)[key], value))) as Table;

test("the config is TOML that sets every private path and the NRI keys", () => {
  const toml = parse(containerdConfigToml(config));
  assert.equal(toml.version, 2);
  assert.equal(toml.root, "/tmp/c/root");
  assert.equal(toml.state, "/tmp/c/state");
  assert.equal(table(toml, "grpc").address, "/tmp/c/containerd.sock");
  assert.equal(table(toml, "ttrpc").address, "/tmp/c/containerd.sock.ttrpc");
  assert.equal(table(toml, "debug").level, "debug");
  assert.equal(table(toml, "plugins", "io.containerd.internal.v1.opt").path, "/tmp/c/opt");
  assert.deepEqual(table(toml, "plugins", "io.containerd.nri.v1.nri"), {
    disable: false,
    disable_connections: false,
    socket_path: "/tmp/c/nri.sock",
    plugin_path: "/tmp/c/nri/plugins",
    plugin_config_path: "/tmp/c/nri/conf.d",
    plugin_registration_timeout: "5s",
    plugin_request_timeout: "2s",
  });
});

test("the CRI runs runc by path with cgroupfs, restricted oom_score_adj and private CNI folders", () => {
  const cri = table(parse(containerdConfigToml(config)), "plugins", "io.containerd.grpc.v1.cri");
  assert.equal(cri.sandbox_image, "localhost/procview/pause:test");
  assert.equal(cri.restrict_oom_score_adj, true);
  assert.equal(cri.disable_apparmor, true);
  assert.equal(cri.stream_server_port, "0");
  assert.equal(table(cri, "containerd").snapshotter, "overlayfs");
  const runc = table(cri, "containerd", "runtimes", "runc");
  assert.equal(runc.runtime_type, "io.containerd.runc.v2");
  assert.deepEqual(runc.options, { BinaryName: '/cache/with "quote"/runc', SystemdCgroup: false });
  assert.deepEqual(table(cri, "cni"), { bin_dir: "/tmp/c/cni/bin", conf_dir: "/tmp/c/cni/conf" });
});

test("container annotation patterns reach the runc runtime's container_annotations, none by default", () => {
  const runtime = (extra: Partial<ContainerdConfig>) =>
    table(parse(containerdConfigToml({ ...config, ...extra })), "plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc");
  assert.deepEqual(runtime({}).container_annotations, []);
  assert.deepEqual(runtime({ containerAnnotations: ["procview.noderesource.dev", "*.procview.noderesource.dev"] }).container_annotations, [
    "procview.noderesource.dev",
    "*.procview.noderesource.dev",
  ]);
});

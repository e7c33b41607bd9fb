/**
 * The config.toml (version 2) of a private containerd 1.7 for the integration tests:
 * every path its own, NRI switched on, the CRI set up for a machine without CNI,
 * AppArmor, CAP_SYS_RESOURCE or systemd (see docs/integration-environment.md).
 */

export interface ContainerdConfig {
  root: string;
  state: string;
  grpcAddress: string;
  ttrpcAddress: string;
  optDir: string;
  nriSocket: string;
  nriPluginPath: string;
  nriPluginConfigPath: string;
  cniBinDir: string;
  cniConfDir: string;
  runcBinary: string;
  /** Annotation patterns the CRI copies from a container's config into its OCI spec (container_annotations). */
  containerAnnotations?: string[];
  sandboxImage: string;
  logLevel: "debug" | "info" | "warn" | "error";
}

export function containerdConfigToml(config: ContainerdConfig): string {
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  const q = (value: string) => JSON.stringify(value);
  return `version = 2
root = ${q(config.root)}
state = ${q(config.state)}

[grpc]
  address = ${q(config.grpcAddress)}

[ttrpc]
  address = ${q(config.ttrpcAddress)}

[debug]
  level = ${q(config.logLevel)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(config.optDir)}

[plugins."io.containerd.nri.v1.nri"]
  disable = false
  disable_connections = false
  socket_path = ${q(config.nriSocket)}
  plugin_path = ${q(config.nriPluginPath)}
  plugin_config_path = ${q(config.nriPluginConfigPath)}
  plugin_registration_timeout = "5s"
  plugin_request_timeout = "2s"

[${cri}]
  sandbox_image = ${q(config.sandboxImage)}
  disable_apparmor = true
  # Without CAP_SYS_RESOURCE runc cannot give the sandbox oom_score_adj -998.
  restrict_oom_score_adj = true
  # Port 0: several private instances run side by side on one machine.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  container_annotations = ${JSON.stringify(config.containerAnnotations ?? [])}

[${cri}.containerd.runtimes.runc.options]
  # trixie's runc needs glibc 2.38; bookworm's runc 1.1 works with containerd 1.7.
  BinaryName = ${q(config.runcBinary)}
  SystemdCgroup = false

[${cri}.cni]
  bin_dir = ${q(config.cniBinDir)}
  conf_dir = ${q(config.cniConfDir)}
`;
}

// The containerd drop-ins and k3s templates enable NRI where procview's defaults expect it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { defaultNriSocket } from "../cli/args.ts";
import { debianPackage } from "../integration/debian-packages.ts";
import { installIntoFolder } from "./testdata/private-install.ts";

const moduleUrl = import.meta.url;

const nriPluginId = "io.containerd.nri.v1.nri";
/** Where deploy/install.sh puts the pre-launched plugin and its configuration by default. */
const pluginPath = "/opt/nri/plugins";
const pluginConfigPath = "/etc/nri/conf.d";

type Table = Record<string, unknown>;

function readDeployFile(path: string): string {
  return readFileSync(new URL(path, moduleUrl), "utf8");
}

function nriTable(config: Table): Table {
  const plugins = config.plugins as Table | undefined;
  const nri = plugins?.[nriPluginId] as Table | undefined;
  assert.ok(nri, `no [plugins."${nriPluginId}"] table`);
  return nri;
}

function assertNriEnabledForProcview(nri: Table): void {
  assert.equal(nri.disable, false, "NRI must be enabled");
  assert.equal(nri.socket_path, defaultNriSocket, "socket_path must be where `procview nri` connects by default");
  assert.equal(nri.plugin_path, pluginPath);
  assert.equal(nri.plugin_config_path, pluginConfigPath);
  assert.equal(nri.disable_connections, false, "external plugins (systemd unit, DaemonSet) must be able to connect");
  // The plugin answers within containerd's request timeout; longer registration is harmless.
  assert.equal(nri.plugin_request_timeout, "2s");
  assert.equal(nri.plugin_registration_timeout, "5s");
}

test("the containerd 1.7 drop-in is config version 2 and enables NRI at procview's socket", () => {
  const config = parseToml(readDeployFile("./containerd/procview-nri.v2.toml"));
  assert.equal(config.version, 2);
  assertNriEnabledForProcview(nriTable(config));
  assert.deepEqual(Object.keys(config).sort(), ["plugins", "version"], "a drop-in sets only what it is for");
});

test("the containerd 2.x drop-in is config version 3 and enables NRI at procview's socket", () => {
  const config = parseToml(readDeployFile("./containerd/procview-nri.v3.toml"));
  assert.equal(config.version, 3);
  assertNriEnabledForProcview(nriTable(config));
  assert.deepEqual(Object.keys(config).sort(), ["plugins", "version"]);
});

/**
 * Stand-ins for k3s's own base templates (the real ones are Go templates inside the k3s
 * binary): each holds what matters here, a version line and plugin tables other than NRI.
 */
const k3sBaseStandIns = {
  2: `version = 2
[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/rancher/k3s/agent/containerd"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
`,
  3: `version = 3
[plugins.'io.containerd.internal.v1.opt']
  path = '/var/lib/rancher/k3s/agent/containerd'
[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
`,
} as const;

const baseTemplateAction = '{{ template "base" . }}';

for (const [file, version] of [["config.toml.tmpl", 2], ["config-v3.toml.tmpl", 3]] as const) {
  test(`k3s ${file} includes the base template first and adds only an enabled NRI table`, () => {
    const template = readDeployFile(`./k3s/${file}`);
    const lines = template.split("\n");
    assert.equal(lines[0], baseTemplateAction, "the base template must come first so k3s's own settings stay");
    assert.equal(template.split("{{").length - 1, 1, "no other template actions");

    const snippet = parseToml(template.replace(baseTemplateAction, ""));
    assert.equal(snippet.version, undefined, "the base template already sets version; a second one is a TOML error");
    assert.deepEqual(Object.keys(snippet.plugins as Table), [nriPluginId]);

    // What k3s renders: the base template's text, then the rest of the file.
    const rendered = parseToml(template.replace(baseTemplateAction, k3sBaseStandIns[version]));
    assert.equal(rendered.version, version);
    assertNriEnabledForProcview(nriTable(rendered));
    assert.ok((rendered.plugins as Table)["io.containerd.internal.v1.opt"], "the base template's tables survive");
  });
}

/** install.sh with every path in `dir`, nothing started, pointed at the containerd config `config`. */
function installWithContainerdConfig(dir: string, config: string): void {
  const result = installIntoFolder(dir, ["--containerd-config", config]);
  assert.equal(result.status, 0, result.stderr);
}

test("real containerd 1.7 (Debian trixie): its default config, after install.sh --containerd-config, enables NRI", async () => {
  const containerd = join(await debianPackage("containerd", "trixie"), "usr/bin/containerd");
  const dir = mkdtempSync(join(tmpdir(), "procview-deploy-containerd-"));
  try {
    // An operator's starting point: `containerd config default`, where NRI is off in 1.7.
    const config = join(dir, "containerd/config.toml");
    mkdirSync(join(dir, "containerd"));
    const original = execFileSync(containerd, ["config", "default"], { encoding: "utf8", timeout: 60_000 });
    writeFileSync(config, original);
    const dump = () => parseToml(execFileSync(containerd, ["--config", config, "config", "dump"], { encoding: "utf8", timeout: 60_000 }));
    assert.equal(nriTable(dump()).disable, true);

    installWithContainerdConfig(dir, config);
    assert.equal(readFileSync(join(dir, "containerd/conf.d/procview-nri.toml"), "utf8"), readDeployFile("./containerd/procview-nri.v2.toml"));
    assertNriEnabledForProcview(nriTable(dump()));
    assert.equal(readFileSync(`${config}.before-procview`, "utf8"), original);

    // Again: nothing changes.
    const once = readFileSync(config, "utf8");
    installWithContainerdConfig(dir, config);
    assert.equal(readFileSync(config, "utf8"), once);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("install.sh --containerd-config picks the version 3 drop-in for a 2.x config and adds imports before the tables", () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-deploy-containerd-"));
  try {
    const config = join(dir, "config.toml");
    writeFileSync(config, "version = 3\n\n[plugins.'io.containerd.cri.v1.runtime']\n  enable_selinux = false\n");
    installWithContainerdConfig(dir, config);
    const merged = parseToml(readFileSync(config, "utf8"));
    assert.deepEqual(merged.imports, [`${dir}/conf.d/*.toml`]);
    assert.equal(merged.version, 3);
    assert.ok((merged.plugins as Table)["io.containerd.cri.v1.runtime"]);
    assert.equal(readFileSync(join(dir, "conf.d/procview-nri.toml"), "utf8"), readDeployFile("./containerd/procview-nri.v3.toml"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("install.sh --containerd-config refuses a config without version 2 or 3 before installing anything", () => {
  const dir = mkdtempSync(join(tmpdir(), "procview-deploy-containerd-"));
  try {
    const config = join(dir, "config.toml");
    writeFileSync(config, "[plugins.cri]\n");
    assert.throws(() => installWithContainerdConfig(dir, config), /no 'version = 2' or 'version = 3' line/);
    assert.equal(readFileSync(config, "utf8"), "[plugins.cri]\n");
    assert.deepEqual(readdirSync(dir), ["config.toml"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

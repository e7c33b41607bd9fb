// The enable-nri kustomize component's init script, run with the host's sh against
// fixture containerd configs below a temporary root, with a systemctl that only records
// what it is asked: the drop-in it writes matches the project's drop-ins, the config
// imports it, containerd is restarted once, and a second run changes nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";

const moduleUrl = import.meta.url;

interface Component {
  kind: string;
  patches: { target: { kind: string; name: string }; patch: string }[];
}

const component = parseYaml(readFileSync(new URL("./kubernetes/enable-nri/kustomization.yaml", moduleUrl), "utf8")) as Component;
const [operation] = parseYaml(component.patches[0].patch) as { op: string; path: string; value: { command: string[]; args: string[]; securityContext: { privileged: boolean } }[] }[];
const initContainer = operation.value[0];
const script = initContainer.args[0];

function nriTable(toml: string): Record<string, unknown> {
  const plugins = parseToml(toml).plugins as Record<string, Record<string, unknown>>;
  return plugins["io.containerd.nri.v1.nri"];
}

function run(root: string): { status: number | null; stdout: string; restarts: string } {
  const bin = join(root, "fake-bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, "systemctl"), `#!/bin/sh\necho "$@" >>${root}/systemctl.log\n`);
  chmodSync(join(bin, "systemctl"), 0o755);
  const result = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8", env: { PATH: `${bin}:/usr/bin:/bin`, PROCVIEW_ROOT: root } });
  assert.equal(result.stderr, "");
  const log = join(root, "systemctl.log");
  return { status: result.status, stdout: result.stdout, restarts: existsSync(log) ? readFileSync(log, "utf8") : "" };
}

test("the component adds one privileged init container to the DaemonSet, run in the host's mount namespace", () => {
  assert.equal(component.kind, "Component");
  assert.deepEqual(component.patches[0].target, { kind: "DaemonSet", name: "procview" });
  assert.deepEqual([operation.op, operation.path], ["add", "/spec/template/spec/initContainers"]);
  assert.deepEqual(initContainer.command, ["/bin/nsenter", "--target=1", "--mount", "--", "/bin/sh", "-c"]);
  assert.equal(initContainer.securityContext.privileged, true);
  assert.equal(spawnSync("/bin/sh", ["-n", "-c", script]).status, 0, "valid sh");
});

for (const version of [2, 3] as const) {
  test(`a version ${version} config gets the drop-in and the import, containerd is restarted once`, () => {
    const root = mkdtempSync(join(tmpdir(), "procview-enable-nri-"));
    try {
      const config = join(root, "etc/containerd/config.toml");
      mkdirSync(join(root, "etc/containerd"), { recursive: true });
      const original = `version = ${version}\nroot = "/var/lib/containerd"\n\n[plugins]\n`;
      writeFileSync(config, original);

      const first = run(root);
      assert.equal(first.status, 0, first.stdout);
      assert.equal(first.restarts, "restart containerd\n");
      const dropin = readFileSync(join(root, "etc/containerd/conf.d/procview-nri.toml"), "utf8");
      const shipped = nriTable(readFileSync(new URL(`./containerd/procview-nri.v${version}.toml`, moduleUrl), "utf8"));
      const written = nriTable(dropin);
      for (const key of ["disable", "socket_path", "plugin_path", "plugin_config_path", "disable_connections"]) {
        assert.deepEqual(written[key], shipped[key], key);
      }
      assert.equal(parseToml(dropin).version, version);
      const rewritten = parseToml(readFileSync(config, "utf8"));
      assert.deepEqual(rewritten.imports, ["/etc/containerd/conf.d/*.toml"]);
      assert.equal(readFileSync(`${config}.before-procview`, "utf8"), original);

      const second = run(root);
      assert.equal(second.status, 0);
      assert.equal(second.restarts, "restart containerd\n", "no second restart");
      assert.match(second.stdout, /already enabled/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test("no containerd config, or one without a version line: nothing is written or restarted", () => {
  const root = mkdtempSync(join(tmpdir(), "procview-enable-nri-"));
  try {
    const missing = run(root);
    assert.equal(missing.status, 0);
    assert.match(missing.stdout, /no \/etc\/containerd\/config\.toml/);
    mkdirSync(join(root, "etc/containerd"), { recursive: true });
    writeFileSync(join(root, "etc/containerd/config.toml"), "root = \"/x\"\n");
    const unversioned = run(root);
    assert.equal(unversioned.status, 0);
    assert.match(unversioned.stdout, /no version 2 or 3 line/);
    assert.equal(unversioned.restarts, "");
    assert.equal(existsSync(join(root, "etc/containerd/conf.d")), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// deploy/README.md says what the files do: the paths and commands it gives must match them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defaultMountpoint } from "../cli/args.ts";
import { viewFiles } from "../core/views.ts";

const moduleUrl = import.meta.url;

const readme = readFileSync(new URL("./README.md", moduleUrl), "utf8");
const repoRoot = fileURLToPath(new URL("..", moduleUrl));

/** The LXCFS-compatible files the FUSE server serves below the mountpoint, for Docker/nerdctl users. */
const lxcfsCompatibleFiles = [
  "proc/meminfo",
  "proc/cpuinfo",
  "proc/stat",
  "proc/uptime",
  "proc/diskstats",
  "proc/swaps",
  "proc/loadavg",
  "sys/devices/system/cpu/online",
];

/** The `-v` flags of the README's `docker run` example, as source → target:options. */
function dockerBinds(): Map<string, string> {
  const command = /^docker run (?:.*\\\n)+.*$/m.exec(readme);
  assert.ok(command, "the README has a docker run example");
  const binds = new Map<string, string>();
  for (const [, source, rest] of command[0].matchAll(/-v (\S+?):(\S+)/g)) binds.set(source, rest);
  return binds;
}

test("the docker run example binds every LXCFS-compatible file read-only over its own path", () => {
  const binds = dockerBinds();
  for (const file of lxcfsCompatibleFiles) {
    assert.equal(binds.get(`${defaultMountpoint}/${file}`), `/${file}:ro`, `missing or writable: ${file}`);
  }
  assert.equal(binds.size, lxcfsCompatibleFiles.length);
});

test("every view the NRI plugin binds is also in the docker run example", () => {
  const binds = dockerBinds();
  for (const view of viewFiles) assert.equal(binds.get(`${defaultMountpoint}/${view.path}`), `${view.target}:ro`);
});

test("every deploy/ file the README names exists, and its file table lists every deployable file", () => {
  const named = new Set([...readme.matchAll(/deploy\/[\w./-]+\w/g)].map(([path]) => path));
  const tableCells = [...readme.matchAll(/^\| (`[^|]+`) \|/gm)].map(([, cell]) => cell);
  const tabled = tableCells.flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map(([, name]) => `deploy/${name}`));
  for (const path of [...named, ...tabled]) assert.ok(existsSync(`${repoRoot}/${path}`), `${path} is named in the README but missing`);

  const deployable = readdirSync(`${repoRoot}/deploy`, { recursive: true })
    .map((name) => `deploy/${String(name)}`)
    .filter((path) => statSync(`${repoRoot}/${path}`).isFile() && !/\.test\.ts$|README\.md$|\.dockerignore$|^deploy\/testdata\//.test(path));
  assert.deepEqual(deployable.filter((path) => !tabled.includes(path)), [], "files missing from the README's table");
});

test("the README's containerd steps use install.sh's option on the default config path", () => {
  assert.ok(readme.includes("sudo deploy/install.sh --containerd-config /etc/containerd/config.toml"));
  assert.ok(readme.includes('imports = ["/etc/containerd/conf.d/*.toml"]'));
});

test("the README's k3s steps put each template where k3s reads it", () => {
  for (const file of ["config.toml.tmpl", "config-v3.toml.tmpl"]) {
    assert.ok(readme.includes(`sudo cp deploy/k3s/${file} /var/lib/rancher/k3s/agent/etc/containerd/`), file);
  }
});

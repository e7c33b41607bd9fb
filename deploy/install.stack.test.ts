// deploy/install.sh, run for real against temporary folders: what it installs, that a
// second run changes nothing, and that the wrapper it writes works the way containerd runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { defaultMountpoint, defaultPluginIndex, defaultPluginName, parseCommandLine } from "../cli/args.ts";
import { defaultStateDir } from "../core/registry.ts";
import { debianTool } from "../integration/debian-tools.ts";
import { cleanUpAtExit } from "../integration/exit-cleanup.ts";
import { builtExecutable, standInExecutable } from "./testdata/executable.ts";

const moduleUrl = import.meta.url;

const installScript = fileURLToPath(new URL("./install.sh", moduleUrl));
const repoRoot = fileURLToPath(new URL("..", moduleUrl));
const standInDir = mkdtempSync(join(tmpdir(), "procview-deploy-stand-in-"));
// Where files go does not depend on the executable: a stand-in that answers --version.
const standIn = standInExecutable(standInDir);
cleanUpAtExit("install.sh test stand-in", () => rmSync(standInDir, { recursive: true, force: true }));

/** The paths containerd 1.7 is configured with by the project's drop-in. */
const nriConfig = (parseToml(readFileSync(new URL("./containerd/procview-nri.v2.toml", moduleUrl), "utf8")).plugins as Record<
  string,
  Record<string, string>
>)["io.containerd.nri.v1.nri"];
const pluginFile = `${defaultPluginIndex}-${defaultPluginName}`;

function install(args: string[]): SpawnSyncReturns<string> {
  return spawnSync("/bin/sh", [installScript, "--binary", standIn, ...args], { encoding: "utf8", timeout: 120_000 });
}

function installOk(args: string[]): void {
  const result = install(args);
  assert.equal(result.status, 0, `install.sh failed: ${result.stderr}`);
}

function withTempDir(run: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "procview-deploy-install-"));
    try {
      await run(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** Every file below `root` with its mode and content hash, to compare two installs. */
function snapshot(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const hash = createHash("sha256").update(readFileSync(path)).digest("hex");
    files.set(path.slice(root.length), `${(statSync(path).mode & 0o7777).toString(8)} ${hash}`);
  }
  return files;
}

/** The words of the wrapper's final `exec` line, which hands over to procview. */
function execWords(wrapper: string): string[] {
  const lines = wrapper.trimEnd().split("\n");
  const last = lines[lines.length - 1].split(" ");
  assert.equal(last[0], "exec", "the wrapper must end by exec-ing procview (so containerd's signals reach it)");
  return last.slice(1);
}

test("install.sh is valid POSIX sh", () => {
  const result = spawnSync("/bin/sh", ["-n", installScript], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
});

test(
  "install.sh into a DESTDIR puts an executable 10-procview wrapper with absolute paths where containerd looks",
  withTempDir((destdir) => {
    installOk(["--destdir", destdir]);

    const wrapperPath = join(destdir, nriConfig.plugin_path, pluginFile);
    assert.equal(statSync(wrapperPath).mode & 0o777, 0o755);
    const wrapper = readFileSync(wrapperPath, "utf8");
    assert.ok(wrapper.startsWith("#!/bin/sh\n"));
    assert.equal(spawnSync("/bin/sh", ["-n", wrapperPath]).status, 0, "the wrapper must be valid sh");

    const [executable, ...args] = execWords(wrapper);
    assert.equal(executable, "/usr/local/bin/procview", "by its absolute path: containerd gives the plugin no PATH");
    assert.equal(readFileSync(join(destdir, executable), "utf8"), readFileSync(standIn, "utf8"), "the executable is installed where the wrapper runs it");
    assert.equal(statSync(join(destdir, executable)).mode & 0o777, 0o755);
    // containerd's environment for a pre-launched plugin: the socket is fd 3, no --socket flag.
    const command = parseCommandLine(args, { NRI_PLUGIN_SOCKET: "3", NRI_PLUGIN_NAME: defaultPluginName, NRI_PLUGIN_IDX: defaultPluginIndex });
    assert.ok(command.kind === "nri");
    assert.equal(command.nri.socketFd, 3);
    assert.equal(command.nri.mountpoint, defaultMountpoint);
    assert.equal(command.nri.stateDir, defaultStateDir);
    for (const path of wrapper.match(/(?<=[ >(])\/[^ )]+/g) ?? []) {
      assert.ok(!path.includes("$"), `no variables in paths: ${path}`);
    }
    assert.match(wrapper, /exec >>\/var\/log\/procview\/nri\.log 2>&1/, "stdio is /dev/null under containerd: log to a file");

    const conf = join(destdir, nriConfig.plugin_config_path, `${pluginFile}.conf`);
    assert.equal(readFileSync(conf, "utf8"), readFileSync(new URL("./nri/10-procview.conf", moduleUrl), "utf8"));
    assert.ok(existsSync(join(destdir, "etc/logrotate.d/procview")));

    // One executable, nothing else of the program: no Node, no sources, no node_modules.
    assert.deepEqual(readdirSync(join(destdir, "usr/local"), { recursive: true }).map(String).sort(), ["bin", "bin/procview", "bin/procview-runc"]);
  }),
);

test(
  "the installed systemd units point at the installed executable, and pass systemd-analyze verify",
  withTempDir(async (destdir) => {
    installOk(["--destdir", destdir]);
    const units = ["procview-fuse.service", "procview-nri.service"].map((name) => join(destdir, "etc/systemd/system", name));
    for (const unit of units) {
      const execStart = /^ExecStart=(\S+) /m.exec(readFileSync(unit, "utf8"));
      assert.deepEqual(execStart?.slice(1), ["/usr/local/bin/procview"]);
    }
    // systemd-analyze verify checks that ExecStart's program exists:
    // the copies it checks name the one installed below DESTDIR.
    const verifyDir = join(destdir, "verify");
    mkdirSync(verifyDir);
    for (const unit of units) {
      const copy = readFileSync(unit, "utf8").replaceAll("/usr/local/bin/procview ", `${destdir}/usr/local/bin/procview `);
      writeFileSync(join(verifyDir, basename(unit)), copy);
    }
    units.splice(0, units.length, ...units.map((unit) => join(verifyDir, basename(unit))));
    // Debian's systemd-analyze, unpacked privately: verify needs no running systemd.
    const systemdAnalyze = await debianTool({
      binary: { package: "systemd", path: "usr/bin/systemd-analyze" },
      needs: ["libsystemd-shared", "libseccomp2"],
      suite: "bookworm",
    });
    const analyze = (args: string[]) => spawnSync(systemdAnalyze.binary, args, { encoding: "utf8", env: systemdAnalyze.env, timeout: 60_000 });
    const verify = analyze(["verify", ...units]);
    assert.equal(verify.error, undefined);
    assert.equal(verify.stderr, "");
    assert.equal(verify.status, 0);

    // The same check rejects a broken copy, so its silence above means something.
    writeFileSync(units[0], readFileSync(units[0], "utf8").replace("Restart=always", "Restart=sometimes"));
    assert.match(analyze(["verify", units[0]]).stderr, /restart specifier/);
  }),
);

test(
  "install.sh run twice gives the same tree and keeps an edited plugin configuration",
  withTempDir((dir) => {
    // From a frozen copy of the sources: the work tree may change between the two runs.
    const checkout = join(dir, "checkout");
    cpSync(join(repoRoot, "deploy"), join(checkout, "deploy"), { recursive: true });
    const destdir = join(dir, "root");
    const installFrozen = () => {
      const result = spawnSync("/bin/sh", [join(checkout, "deploy/install.sh"), "--binary", standIn, "--destdir", destdir], {
        encoding: "utf8",
        timeout: 120_000,
      });
      assert.equal(result.status, 0, result.stderr);
    };
    installFrozen();
    const conf = join(destdir, nriConfig.plugin_config_path, `${pluginFile}.conf`);
    writeFileSync(conf, "# edited by the operator\n");
    const first = snapshot(destdir);
    installFrozen();
    assert.deepEqual(snapshot(destdir), first);
    assert.equal(readFileSync(conf, "utf8"), "# edited by the operator\n");
  }),
);

test(
  "install.sh --mode external or none removes the pre-launched wrapper, so only one plugin instance can run",
  withTempDir((destdir) => {
    const wrapper = join(destdir, nriConfig.plugin_path, pluginFile);
    for (const mode of ["external", "none"]) {
      installOk(["--destdir", destdir]);
      assert.ok(existsSync(wrapper));
      installOk(["--destdir", destdir, "--mode", mode]);
      assert.ok(!existsSync(wrapper), `--mode ${mode} leaves the wrapper`);
    }
    // The unit refuses to start while a wrapper exists: the same path.
    const unit = readFileSync(join(destdir, "etc/systemd/system/procview-nri.service"), "utf8");
    assert.match(unit, new RegExp(`^ConditionPathExists=!${nriConfig.plugin_path}/${pluginFile}$`, "m"));
  }),
);

test("install.sh rejects bad input with a clear message and a non-zero status", () => {
  const cases: [string[], RegExp][] = [
    [["--mode", "sidecar"], /--mode must be prelaunched, external or none/],
    [["--prefix", "usr/local"], /--prefix must be an absolute path/],
    [["--plugin-dir", "/opt/nri plugins"], /--plugin-dir may hold only/],
    [["--bogus"], /unknown option '--bogus'/],
    [["--destdir"], /--destdir needs a value/],
  ];
  for (const [args, message] of cases) {
    const result = install(args);
    assert.equal(result.status, 1, `${args.join(" ")} must fail`);
    assert.match(result.stderr, message);
  }
  const notProcview = spawnSync("/bin/sh", [installScript, "--binary", "/bin/true", "--destdir", "/nonexistent"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(notProcview.status, 1);
  assert.match(notProcview.stderr, /'\/bin\/true' is not a procview executable/);
  const missing = spawnSync("/bin/sh", [installScript, "--binary", "/nonexistent/procview", "--destdir", "/nonexistent"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no procview executable at \/nonexistent\/procview: build it \(npm run build\) or give --binary FILE/);
});

test(
  "the installed wrapper, run as containerd runs it (no PATH, stdio on /dev/null, socket on fd 3), starts the plugin",
  withTempDir(async (dir) => {
    // Every path below the temporary folder; nothing is started (--no-start).
    const paths = {
      prefix: join(dir, "usr/local"),
      pluginDir: join(dir, "opt/nri/plugins"),
      confDir: join(dir, "etc/nri/conf.d"),
      unitDir: join(dir, "etc/systemd/system"),
      logDir: join(dir, "var/log/procview"),
      logrotateDir: join(dir, "etc/logrotate.d"),
    };
    installOk([
      "--no-start",
      "--prefix", paths.prefix,
      "--plugin-dir", paths.pluginDir,
      "--plugin-conf-dir", paths.confDir,
      "--unit-dir", paths.unitDir,
      "--log-dir", paths.logDir,
      "--logrotate-dir", paths.logrotateDir,
    ]);
    // Stand-in for the plugin (the real one needs containerd at the other end of fd 3):
    // it reports what it was started with, and answers on fd 3.
    const entry = join(paths.prefix, "bin/procview");
    const reporter = join(dir, "report.mjs");
    writeFileSync(
      reporter,
      `import { fstatSync, writeSync } from "node:fs";
const socket = fstatSync(3).isSocket();
writeSync(3, "registered\\n");
console.log(JSON.stringify({ argv: process.argv.slice(2), env: process.env, socket }));
console.error("a line on stderr");
`,
    );
    writeFileSync(entry, `#!/bin/sh\nexec ${process.execPath} ${reporter} "$0" "$@"\n`);
    chmodSync(entry, 0o755);

    const child = spawn(join(paths.pluginDir, pluginFile), [], {
      env: { NRI_PLUGIN_NAME: defaultPluginName, NRI_PLUGIN_IDX: defaultPluginIndex, NRI_PLUGIN_SOCKET: "3" },
      stdio: ["ignore", "ignore", "ignore", "pipe"],
    });
    const fromPlugin: Buffer[] = [];
    child.stdio[3]?.on("data", (chunk: Buffer) => fromPlugin.push(chunk));
    const status = await new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    assert.equal(status, 0);
    await new Promise((resolve) => setTimeout(resolve, 50)); // last data on fd 3
    assert.equal(Buffer.concat(fromPlugin).toString(), "registered\n", "fd 3 reaches node unchanged");

    const [report, stderrLine] = readFileSync(join(paths.logDir, "nri.log"), "utf8").trimEnd().split("\n");
    assert.equal(stderrLine, "a line on stderr", "stderr goes to the log file too");
    const started = JSON.parse(report) as { argv: string[]; env: Record<string, string>; socket: boolean };
    assert.equal(started.socket, true);
    assert.equal(started.argv[0], entry);
    assert.equal(started.env.NRI_PLUGIN_SOCKET, "3");
    assert.equal(started.env.HOME, undefined);
    const command = parseCommandLine(started.argv.slice(1), started.env);
    assert.ok(command.kind === "nri");
    assert.equal(command.nri.socketFd, 3);
  }),
);

test(
  "install.sh installs the single executable the build makes, and the installed program runs without Node",
  withTempDir((destdir) => {
    const result = spawnSync("/bin/sh", [installScript, "--binary", builtExecutable(), "--destdir", destdir], { encoding: "utf8", timeout: 300_000 });
    assert.equal(result.status, 0, `install.sh failed: ${result.stderr}`);
    const help = spawnSync(join(destdir, "usr/local/bin/procview"), ["nri", "--help"], { encoding: "utf8", env: {}, timeout: 60_000 });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /--socket PATH/);

    // procview-runc beside it is the same executable, and passes runc's commands through unchanged, with no Node.
    const runtime = join(destdir, "usr/local/bin/procview-runc");
    assert.equal(readlinkSync(runtime), "procview");
    const args = ["--root", "/run/some root", "--log-format", "json", "state", "container-1"];
    const passed = spawnSync(runtime, args, { encoding: "utf8", env: { PROCVIEW_RUNC: "/bin/echo" }, timeout: 60_000 });
    assert.equal(passed.status, 0, passed.stderr);
    assert.equal(passed.stdout, `${args.join(" ")}\n`);
    assert.equal(passed.stderr, "");
  }),
);

// The systemd units start procview with its defaults, ordered before containerd,
// restarting on failure. (systemd-analyze verify runs on the installed copies, in
// install.stack.test.ts.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defaultMountpoint, defaultNriSocket, parseCommandLine } from "../cli/args.ts";
import { defaultStateDir } from "../core/registry.ts";

const moduleUrl = import.meta.url;

type Unit = Map<string, Map<string, string[]>>;

/** A unit file as section → key → values (a key may repeat); comments and blank lines dropped. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1], section);
      continue;
    }
    const assignment = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(section && assignment, `not a unit file line: ${JSON.stringify(line)}`);
    section.set(assignment[1], [...(section.get(assignment[1]) ?? []), assignment[2]]);
  }
  return unit;
}

function value(unit: Unit, section: string, key: string): string {
  const values = unit.get(section)?.get(key);
  assert.ok(values?.length === 1, `[${section}] ${key} must be set once`);
  return values[0];
}

function unitFile(name: string): string {
  return fileURLToPath(new URL(`./systemd/${name}`, moduleUrl));
}

/** The procview arguments of ExecStart, after the executable. */
function procviewArgs(unit: Unit): string[] {
  const [executable, ...args] = value(unit, "Service", "ExecStart").split(" ");
  assert.equal(executable, "/usr/local/bin/procview");
  return args;
}

const fuseUnit = parseUnit(readFileSync(unitFile("procview-fuse.service"), "utf8"));
const nriUnit = parseUnit(readFileSync(unitFile("procview-nri.service"), "utf8"));

test("the FUSE unit serves the default mountpoint and state dir, and is started before containerd", () => {
  const command = parseCommandLine(procviewArgs(fuseUnit), {});
  assert.ok(command.kind === "fuse");
  assert.equal(command.fuse.mountpoint, defaultMountpoint);
  assert.equal(command.fuse.stateDir, defaultStateDir);

  assert.ok(value(fuseUnit, "Unit", "Before").split(" ").includes("containerd.service"));
  assert.equal(value(fuseUnit, "Service", "Restart"), "always");
  assert.equal(value(fuseUnit, "Unit", "StartLimitIntervalSec"), "0", "never give up restarting");
  // Started means mounted: the post-start check waits for the fuse.procview mount there.
  const startPost = value(fuseUnit, "Service", "ExecStartPost");
  assert.ok(startPost.includes(` ${defaultMountpoint} `) && startPost.includes("fuse[.]procview"));
  assert.ok(value(fuseUnit, "Install", "WantedBy").split(" ").includes("containerd.service"));
  assertNoMountNamespace(fuseUnit);
});

test("the FUSE unit's readiness check matches a procview mount line and nothing else", () => {
  const script = /^\/bin\/sh -c '(.*)'$/.exec(value(fuseUnit, "Service", "ExecStartPost"))?.[1];
  assert.ok(script);
  const pattern = /grep -qE "([^"]+)"/.exec(script)?.[1];
  assert.ok(pattern);
  const grep = (line: string) => spawnSync("grep", ["-qE", pattern], { input: line + "\n" }).status;
  const mountLine = (point: string, type: string) => `51 30 0:48 / ${point} ro,nosuid,nodev,relatime shared:27 - ${type} procview ro,user_id=0,group_id=0,allow_other`;
  assert.equal(grep(mountLine(defaultMountpoint, "fuse.procview")), 0);
  assert.equal(grep(mountLine(defaultMountpoint, "fuse.lxcfs")), 1);
  assert.equal(grep(mountLine(`${defaultMountpoint}/x`, "fuse.procview")), 1);
  assert.equal(grep(mountLine("/srv/procview", "fuse.procview")), 1);
});

test("the NRI unit connects to the default socket and cannot run beside the pre-launched plugin", () => {
  const command = parseCommandLine(procviewArgs(nriUnit), {});
  assert.ok(command.kind === "nri");
  assert.equal(command.nri.socketPath, defaultNriSocket);
  assert.equal(command.nri.mountpoint, defaultMountpoint);
  assert.equal(command.nri.stateDir, defaultStateDir);

  assert.equal(value(nriUnit, "Unit", "ConditionPathExists"), "!/opt/nri/plugins/10-procview");
  assert.equal(value(nriUnit, "Unit", "After"), "procview-fuse.service");
  assert.ok(value(nriUnit, "Unit", "Before").split(" ").includes("containerd.service"));
  assert.equal(value(nriUnit, "Service", "Restart"), "always");
  assertNoMountNamespace(nriUnit);
});

/** Settings that give a service its own mount namespace, hiding the FUSE mount from the host. */
function assertNoMountNamespace(unit: Unit): void {
  const service = unit.get("Service");
  assert.ok(service);
  for (const key of service.keys()) {
    assert.ok(!/^(Protect(System|Home|KernelTunables|ControlGroups|KernelModules)|Private(Tmp|Devices|Mounts)|ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|TemporaryFileSystem|BindPaths|MountFlags)$/.test(key), `${key} would hide the FUSE mount`);
  }
}

/**
 * A command of the FUSE unit as systemd would run it, with this checkout's procview (the
 * same command line) in place of the installed executable (install.sh makes the same substitution).
 */
function fuseUnitCommand(key: string): string {
  const node = fileURLToPath(new URL("../node_modules/node/bin/node", moduleUrl));
  const checkout = fileURLToPath(new URL("..", moduleUrl));
  return value(fuseUnit, "Service", key).replaceAll("/usr/local/bin/procview ", `${node} ${checkout}bin/procview.js `);
}

/** The script of a `/bin/sh -c '…'` command of the FUSE unit. */
function fuseUnitScript(key: string): string {
  const script = /^\/bin\/sh -c '(.*)'$/.exec(fuseUnitCommand(key))?.[1];
  assert.ok(script, `${key} is not a /bin/sh -c script`);
  return script;
}

/**
 * Shell lines that start the FUSE unit's server as $server, in a private mount namespace
 * (the test runs them under unshare) with fresh tmpfs on /var/lib and /run, so that the
 * default mountpoint and state dir are private to the test and vanish with it.
 */
const startFuseUnitServer = `
    set -e
    mount -t tmpfs procview-test /var/lib
    mount -t tmpfs procview-test /run
    ${fuseUnitCommand("ExecStart")} >/run/fuse.log 2>&1 &
    server=$!`;

test("the FUSE unit's commands mount at the default mountpoint, and its start check sees the mount", () => {
  const startCheck = fuseUnitScript("ExecStartPost");
  const script = `${startFuseUnitServer}
    status=0
    timeout 20 /bin/sh -c '${startCheck}' || status=$?
    [ $status != 0 ] || [ -e ${defaultMountpoint}/proc/meminfo ] || status=3
    kill -TERM $server
    wait $server || true
    [ $status = 0 ] || cat /run/fuse.log >&2
    exit $status
  `;
  const result = spawnSync("unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script], { encoding: "utf8", timeout: 60_000 });
  assert.equal(result.status, 0, `start check failed (${result.status}): ${result.stderr}`);
});

test("the FUSE unit reloads by --replace: same arguments, PIDFile in its state dir", () => {
  const startArgs = procviewArgs(fuseUnit);
  const reload = /^\/bin\/sh -c '(.*)'$/.exec(value(fuseUnit, "Service", "ExecReload"))?.[1];
  assert.ok(reload);
  const successor = /\/usr\/local\/bin\/procview ([^&]+) &/.exec(reload)?.[1].trim().split(" ");
  assert.deepEqual(successor, ["fuse", "--replace", ...startArgs.slice(1)], "the successor serves what ExecStart serves");
  const command = parseCommandLine(startArgs, {});
  assert.ok(command.kind === "fuse");
  assert.equal(value(fuseUnit, "Service", "PIDFile"), `${command.fuse.stateDir}/fuse.pid`);
  // systemd passes `$name` inside a word through to the shell; only ${name} and $$ are its own.
  assert.doesNotMatch(reload, /\$\{|\$\$/);
});

test("the FUSE unit's reload command hands the mount over with no failed read, and returns once the old server is gone", () => {
  // $MAINPID is what systemd sets for ExecReload.
  const startCheck = fuseUnitScript("ExecStartPost");
  const reload = fuseUnitScript("ExecReload");
  const pidFile = value(fuseUnit, "Service", "PIDFile");
  const script = `${startFuseUnitServer}
    timeout 20 /bin/sh -c '${startCheck}'
    while :; do head -c 10 ${defaultMountpoint}/proc/meminfo >/dev/null 2>>/run/failed || echo failed >>/run/failed; sleep 0.1; done &
    reader=$!
    sleep 1
    status=0
    MAINPID=$server timeout 60 /bin/sh -c '${reload}' >/run/reload.log 2>&1 || status=$?
    sleep 1
    kill $reader
    new=$(cat ${pidFile})
    echo "reload=$status old-alive=$(kill -0 $server 2>/dev/null && echo yes || echo no) new-differs=$([ "$new" != "$server" ] && echo yes || echo no) new-alive=$(kill -0 $new 2>/dev/null && echo yes || echo no) failed=$(cat /run/failed 2>/dev/null | wc -l)"
    kill -TERM $server $new 2>/dev/null || true
    for i in $(seq 50); do kill -0 $new 2>/dev/null || break; sleep 0.2; done
    [ $status = 0 ] || cat /run/fuse.log /run/reload.log >&2
  `;
  const result = spawnSync("unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script], { encoding: "utf8", timeout: 120_000 });
  assert.equal(result.stdout.trim(), "reload=0 old-alive=no new-differs=yes new-alive=yes failed=0", result.stderr);
});

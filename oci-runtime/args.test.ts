import assert from "node:assert/strict";
import { test } from "node:test";
import { parseRuncArgs } from "./args.ts";

test("containerd's shim command line: globals, create with bundle and pid file", () => {
  const argv = ["--root", "/run/containerd/runc/default", "--log", "/b/log.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1"];
  assert.deepEqual(parseRuncArgs(argv), {
    kind: "create",
    globals: { root: "/run/containerd/runc/default", log: "/b/log.json", logFormat: "json", debug: false, systemdCgroup: true },
    id: "c1",
    bundle: "/b",
    detach: false,
    keep: false,
    preserveFds: 0,
  });
});

test("Go-style flags: one or two dashes, values after = or as the next argument, -b for --bundle", () => {
  const parsed = parseRuncArgs(["-root=/r", "-debug", "--log-format=text", "create", "-b=/bundle", "--console-socket", "/s.sock", "--no-pivot", "c2"]);
  assert.equal(parsed.kind, "create");
  assert.deepEqual(parsed.kind === "create" && [parsed.globals.root, parsed.globals.debug, parsed.globals.logFormat, parsed.bundle, parsed.id], ["/r", true, "text", "/bundle", "c2"]);
  const noBundle = parseRuncArgs(["create", "c3"]);
  assert.equal(noBundle.kind === "create" && noBundle.bundle, undefined, "runc's default bundle is the working directory");
  assert.equal(parseRuncArgs(["--debug=false", "create", "c4"]).kind === "create" && (parseRuncArgs(["--debug=false", "create", "c4"]) as { globals: { debug: boolean } }).globals.debug, false);
});

test("run: detach, keep and preserved fds; delete: force", () => {
  const run = parseRuncArgs(["run", "-d", "--keep", "--preserve-fds", "2", "-b", "/b", "c5"]);
  assert.deepEqual(run.kind === "run" && [run.detach, run.keep, run.preserveFds, run.id], [true, true, 2, "c5"]);
  const foreground = parseRuncArgs(["run", "c6"]);
  assert.deepEqual(foreground.kind === "run" && [foreground.detach, foreground.keep], [false, false]);
  const remove = parseRuncArgs(["--root", "/r", "delete", "--force", "c7"]);
  assert.deepEqual(remove.kind === "delete" && [remove.id, remove.globals.root], ["c7", "/r"]);
});

test("every other command, help, a missing id or an unknown flag is passed through", () => {
  for (const argv of [
    [],
    ["--version"],
    ["-v"],
    ["state", "c1"],
    ["--root", "/r", "start", "c1"],
    ["kill", "c1", "KILL"],
    ["create", "--help"],
    ["create"],
    ["create", "--bundle"],
    ["--unknown-global", "create", "c1"],
    ["create", "--some-future-flag", "x", "c1"],
    ["--root"],
  ]) {
    assert.deepEqual(parseRuncArgs(argv), { kind: "pass-through" }, argv.join(" "));
  }
});

test("flags end at the first argument that is not one, and at --", () => {
  const parsed = parseRuncArgs(["create", "--", "-odd-id"]);
  assert.equal(parsed.kind === "create" && parsed.id, "-odd-id");
  // runc reads "create" as the command even if an argument after the id looks like a flag.
  assert.equal(parseRuncArgs(["create", "c1", "--bundle", "/x"]).kind === "create" && (parseRuncArgs(["create", "c1", "--bundle", "/x"]) as { bundle?: string }).bundle, undefined);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultWorkers, parseCommandLine, UsageError } from "./args.ts";

test("no command, help and --help print the main help", () => {
  for (const argv of [[], ["help"], ["--help"], ["-h"]]) {
    const command = parseCommandLine(argv, {});
    assert.equal(command.kind, "help");
    assert.match(command.kind === "help" ? command.text : "", /Commands:\n  fuse/);
  }
});

test("each subcommand has its own --help", () => {
  for (const [sub, marker] of [["fuse", "--workers"], ["nri", "--socket"], ["run", "--index"]] as const) {
    const command = parseCommandLine([sub, "--help"], {});
    assert.equal(command.kind, "help");
    assert.match(command.kind === "help" ? command.text : "", new RegExp(`Usage: procview ${sub}[\\s\\S]*${marker}`));
  }
});

test("run takes the documented defaults", () => {
  assert.deepEqual(parseCommandLine(["run"], {}), {
    kind: "run",
    logLevel: "info",
    fuse: { mountpoint: "/var/lib/procview", stateDir: "/run/procview", workers: defaultWorkers, backend: "kernel", cpuLimitByQuota: false, replace: false, onReplaced: "exit" },
    nri: {
      mountpoint: "/var/lib/procview",
      stateDir: "/run/procview",
      name: "procview",
      index: "10",
      flagSettings: {},
      socketPath: "/var/run/nri/nri.sock",
    },
  });
});

test("fuse and nri take their flags", () => {
  assert.deepEqual(parseCommandLine(["fuse", "--mountpoint", "/mnt/pv/", "--state-dir", "/tmp/s", "--workers", "4", "--log-level", "debug", "--cpu-limit-by-quota"], {}), {
    kind: "fuse",
    logLevel: "debug",
    fuse: { mountpoint: "/mnt/pv", stateDir: "/tmp/s", workers: 4, backend: "kernel", cpuLimitByQuota: true, replace: false, onReplaced: "exit" },
  });
  assert.deepEqual(parseCommandLine(["nri", "--socket", "/s/nri.sock", "--mountpoint", "/m", "--name", "pv", "--index", "05", "--default-policy", "opted-in"], {}), {
    kind: "nri",
    logLevel: "info",
    nri: { mountpoint: "/m", stateDir: "/run/procview", name: "pv", index: "05", flagSettings: { defaultPolicy: "opted-in" }, socketPath: "/s/nri.sock" },
  });
});

test("the plugin's settings flags: only the flags given, with the config file beside them", () => {
  const command = parseCommandLine(
    ["nri", "--config", "/etc/procview/nri.yaml", "--views", "cpuinfo,meminfo", "--cpu-limit-by-quota"],
    { NRI_PLUGIN_SOCKET: "3" },
  );
  assert.deepEqual(command.kind === "nri" && command.nri, {
    mountpoint: "/var/lib/procview",
    stateDir: "/run/procview",
    name: "procview",
    index: "10",
    flagSettings: { views: ["meminfo", "cpuinfo"], cpuByQuota: true },
    configFile: "/etc/procview/nri.yaml",
    socketFd: 3,
  });
  const run = parseCommandLine(["run", "--config", "/c.json", "--cpu-limit-by-quota"], {});
  assert.equal(run.kind === "run" && run.fuse.cpuLimitByQuota, true);
  assert.equal(run.kind === "run" && run.nri.configFile, "/c.json");
});

test("nri --replace reaches the plugin settings only when given", () => {
  const command = parseCommandLine(["nri", "--replace"], {});
  assert.equal(command.kind === "nri" && command.nri.replace, true);
  const plain = parseCommandLine(["nri"], {});
  assert.equal(plain.kind === "nri" && plain.nri.replace, undefined);
});

test("pre-launched mode takes socket fd, name and index from the runtime's env", () => {
  const command = parseCommandLine(["nri"], { NRI_PLUGIN_SOCKET: "3", NRI_PLUGIN_NAME: "procview", NRI_PLUGIN_IDX: "10" });
  assert.deepEqual(command.kind === "nri" && command.nri, {
    mountpoint: "/var/lib/procview",
    stateDir: "/run/procview",
    name: "procview",
    index: "10",
    flagSettings: {},
    socketFd: 3,
  });
});

test("bad input is a usage error naming the problem", () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [["mount"], {}, /unknown command 'mount'/],
    [["fuse", "--socket", "/x"], {}, /'procview fuse' takes no --socket/],
    [["fuse", "--bogus"], {}, /Unknown option '--bogus'/],
    [["fuse", "--mountpoint", "relative"], {}, /--mountpoint must be an absolute path/],
    [["fuse", "--workers", "65"], {}, /--workers must be a whole number/],
    [["fuse", "--log-level", "loud"], {}, /--log-level must be/],
    [["nri", "--index", "7"], {}, /two digits/],
    [["nri", "--default-policy", "some"], {}, /--default-policy must be all or opted-in/],
    [["nri", "--name", "a b"], {}, /plugin name 'a b'/],
    [["nri"], { NRI_PLUGIN_SOCKET: "three" }, /NRI_PLUGIN_SOCKET must be a file descriptor/],
    [["nri", "--socket", "/s"], { NRI_PLUGIN_SOCKET: "3" }, /conflicts/],
    [["fuse", "extra"], {}, /positional/],
    [["fuse", "--backend", "libfuse"], {}, /--backend must be kernel or fuse-native, not 'libfuse'/],
    [["fuse", "--backend", "fuse-native", "--workers", "4"], {}, /--workers applies to --backend kernel only/],
    [["nri", "--backend", "kernel"], {}, /'procview nri' takes no --backend/],
    [["nri", "--config", "procview.yaml"], {}, /--config must be an absolute path/],
    [["nri", "--views", "meminfo,vmstat"], {}, /--views: unknown view "vmstat"/],
    [["fuse", "--config", "/etc/procview.yaml"], {}, /'procview fuse' takes no --config/],
  ];
  for (const [argv, env, message] of cases) {
    assert.throws(() => parseCommandLine(argv, env), (err: unknown) => err instanceof UsageError && message.test(err.message), argv.join(" "));
  }
});

test("--backend picks the FUSE server for fuse and run; kernel is the default and can be named", () => {
  const backendOf = (argv: string[]) => {
    const command = parseCommandLine(argv, {});
    return command.kind === "fuse" || command.kind === "run" ? command.fuse.backend : undefined;
  };
  assert.equal(backendOf(["fuse"]), "kernel");
  assert.equal(backendOf(["fuse", "--backend", "kernel", "--workers", "3"]), "kernel");
  assert.equal(backendOf(["fuse", "--backend", "fuse-native"]), "fuse-native");
  assert.equal(backendOf(["run", "--backend=fuse-native"]), "fuse-native");
});

test("fuse help says fuse-native has no reader-pid layout", () => {
  const command = parseCommandLine(["fuse", "--help"], {});
  assert.match(command.kind === "help" ? command.text : "", /--backend B[\s\S]*fuse-native[\s\S]*reader-pid layout is unavailable/);
});

test("under Deno, --backend fuse-native is refused and says why; the kernel backend is fine", () => {
  for (const sub of ["fuse", "run"]) {
    assert.throws(
      () => parseCommandLine([sub, "--backend", "fuse-native"], {}, "deno"),
      (err: unknown) => err instanceof UsageError && /fuse-native needs Node.*aborts under Deno.*--backend kernel/.test(err.message),
      sub,
    );
  }
  const command = parseCommandLine(["fuse", "--backend", "kernel"], {}, "deno");
  assert.equal(command.kind === "fuse" && command.fuse.backend, "kernel");
});

test("--version, -V and version print the version", () => {
  for (const argv of [["--version"], ["-V"], ["version"]]) assert.deepEqual(parseCommandLine(argv, {}), { kind: "version" });
});

test("status takes --state-dir and --json, and nothing the servers take", () => {
  assert.deepEqual(parseCommandLine(["status"], {}), { kind: "status", stateDir: "/run/procview", json: false });
  assert.deepEqual(parseCommandLine(["status", "--state-dir", "/tmp/pv/", "--json"], {}), { kind: "status", stateDir: "/tmp/pv", json: true });
  assert.throws(() => parseCommandLine(["status", "--mountpoint", "/m"], {}), /'procview status' takes no --mountpoint/);
  assert.throws(() => parseCommandLine(["status", "--state-dir", "rel"], {}), /--state-dir must be an absolute path/);
  assert.throws(() => parseCommandLine(["fuse", "--json"], {}), /'procview fuse' takes no --json/);
});

test("--metrics-address on fuse, nri and run; absent, metrics are off", () => {
  for (const sub of ["fuse", "nri", "run"]) {
    const command = parseCommandLine([sub, "--metrics-address", "127.0.0.1:9464"], {});
    assert.deepEqual("metricsAddress" in command && command.metricsAddress, { host: "127.0.0.1", port: 9464 });
    assert.equal("metricsAddress" in parseCommandLine([sub], {}), false);
  }
  const at = (value: string) => {
    const command = parseCommandLine(["fuse", "--metrics-address", value], {});
    return "metricsAddress" in command ? command.metricsAddress : undefined;
  };
  assert.deepEqual(at("[::1]:9464"), { host: "::1", port: 9464 });
  assert.deepEqual(at(":9464"), { host: "0.0.0.0", port: 9464 });
  assert.deepEqual(at("localhost:1"), { host: "localhost", port: 1 });
  for (const bad of ["9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "host:port", "::1:9464"]) {
    assert.throws(() => at(bad), /--metrics-address must be HOST:PORT/, bad);
  }
});

test("--replace takes a live server's connection over; --on-replaced says what the replaced server does", () => {
  const fuse = parseCommandLine(["fuse", "--replace", "--on-replaced", "wait"], {});
  assert.ok(fuse.kind === "fuse");
  assert.deepEqual([fuse.fuse.replace, fuse.fuse.onReplaced], [true, "wait"]);
  const run = parseCommandLine(["run", "--replace"], {});
  assert.ok(run.kind === "run");
  assert.deepEqual([run.fuse.replace, run.fuse.onReplaced], [true, "exit"]);
  assert.throws(() => parseCommandLine(["fuse", "--on-replaced", "linger"], {}), /--on-replaced must be exit or wait, not 'linger'/);
  assert.throws(() => parseCommandLine(["run", "--on-replaced", "wait"], {}), /'procview run' takes no --on-replaced/);
  assert.throws(() => parseCommandLine(["fuse", "--replace", "--backend", "fuse-native"], {}), /--replace needs --backend kernel/);
  assert.match((parseCommandLine(["fuse", "--help"], {}) as { text: string }).text, /--replace/);
});

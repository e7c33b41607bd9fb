/**
 * Views that change over time, through real mounts of procview's tree (root, /dev/fuse, a
 * writable cgroup hierarchy): a process in a memory-limited cgroup holds
 * /proc/meminfo-equivalents open and re-reads them from offset 0, as procps does, while it
 * grows its memory (both layouts on the kernel backend, containers/<id> on fuse-native);
 * and /proc/loadavg of a busy and an idle cgroup through the real `procview fuse` process.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { createLogger } from "../core/log.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { startFuseServer, type FuseServer, type FuseServerOptions } from "./daemon.ts";
import { isProcviewMount } from "./kernel/mount.ts";
import { startNativeFuseServer } from "./native/server.ts";
import { removeCgroupTreesWhenIdle } from "../integration/leftovers.ts";
import { startProcviewFuse } from "../integration/procview-process.ts";
import { makeCgroup, moveToParentCgroup, removeCgroup, type TestCgroup } from "./testdata/test-cgroup.ts";

const run = promisify(execFile);
// Deno type-checks with this project's tsconfig, whose libs lack ImportMeta.url.
const here = import.meta.url;
const procviewTree = new URL("../views/procview-tree.ts", here).href;
const MiB = 1024 * 1024;
const replyTimeoutMs = 15_000;

/**
 * Reads commands from stdin: `open PATH...` keeps the files open, `grow MIB` touches that
 * much more memory, `read` nothing more; after each, every open file is read again from
 * offset 0 (lseek, then read to EOF) and its MemFree (or the read's error) printed as JSON.
 */
const holderScript = String.raw`
import json, os, re, sys
fds, blocks = [], []
def mem_free(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    text = b''
    while True:
        chunk = os.read(fd, 65536)
        if not chunk: break
        text += chunk
    return int(re.search(rb'^MemFree:\s+(\d+) kB$', text, re.M).group(1))
for line in sys.stdin:
    command, *args = line.split()
    if command == 'open': fds = [os.open(path, os.O_RDONLY) for path in args]
    elif command == 'grow': blocks.append(b'\x01' * (int(args[0]) << 20))
    out = []
    for fd in fds:
        try: out.append(mem_free(fd))
        except OSError as error: out.append(os.strerror(error.errno))
    print(json.dumps(out), flush=True)
`;

class Holder {
  readonly process: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;

  constructor() {
    this.process = spawn("python3", ["-c", holderScript]);
    this.#lines = createInterface({ input: this.process.stdout })[Symbol.asyncIterator]();
  }

  /** MemFree in kB (or an error message) for each open file, after `command`. */
  async send(command: string): Promise<(number | string)[]> {
    this.process.stdin.write(command + "\n");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer to "${command}" within ${replyTimeoutMs} ms`)), replyTimeoutMs);
    });
    try {
      const line = await Promise.race([this.#lines.next(), timeout]);
      if (line.done) throw new Error(`the holder ended before answering "${command}"`);
      return JSON.parse(line.value) as (number | string)[];
    } finally {
      clearTimeout(timer);
    }
  }
}

interface Setup {
  mountpoint: string;
  id: string;
  holder: Holder;
  cgroup: TestCgroup;
}

function describeBackend(name: string, startServer: (options: FuseServerOptions) => Promise<FuseServer>, layouts: (setup: Setup) => string[]) {
  describe(`views re-read from offset 0 on the ${name} backend`, () => {
    const setup = { id: `over-time-${process.pid}` } as Setup;
    let dir: string;
    let server: FuseServer | undefined;

    before(async () => {
      // Made here, not at definition: a run that filters this suite out leaves nothing behind.
      dir = mkdtempSync(join(tmpdir(), "procview-over-time-"));
      chmodSync(dir, 0o755);
      const stateDir = join(dir, "state");
      setup.mountpoint = join(dir, "mnt");
      setup.holder = new Holder();
      setup.cgroup = makeCgroup(`/procview-over-time-${process.pid}-${Date.now()}`, 200 * MiB, undefined, setup.holder.process);
      new ContainerRegistry(stateDir).put({ id: setup.id, cgroupPath: setup.cgroup.path, recordedAt: Date.now() });
      server = await startServer({
        mountpoint: setup.mountpoint,
        stateDir,
        treeModule: procviewTree,
        treeOptions: { stateDir },
        logger: createLogger({ write: () => {} }),
      });
    });

    after(async () => {
      if (setup.cgroup !== undefined) await removeCgroup(setup.cgroup);
      await server?.stop();
      if (isProcviewMount(setup.mountpoint)) await run("umount", ["-l", setup.mountpoint]);
      rmSync(dir, { recursive: true, force: true });
    });

    test("MemFree moves while the holder grows memory in its cgroup; a cgroup gone meanwhile reads ENOENT", async () => {
      const paths = layouts(setup);
      const opened = await setup.holder.send(`open ${paths.join(" ")}`);
      assert.equal(opened.length, paths.length);
      for (const free of opened) assert.ok(typeof free === "number" && free <= 200 * 1024, `MemFree ${free} kB within the 200 MiB limit`);
      const grown = await setup.holder.send("grow 40");
      const grownMore = await setup.holder.send("grow 40");
      paths.forEach((path, i) => {
        // 40 MiB touched per step; the rest of the cgroup's usage barely moves meanwhile.
        assert.ok((opened[i] as number) - (grown[i] as number) >= 35 * 1024, `${path}: ${opened[i]} -> ${grown[i]} kB after 40 MiB`);
        assert.ok((grown[i] as number) - (grownMore[i] as number) >= 35 * 1024, `${path}: ${grown[i]} -> ${grownMore[i]} kB after 40 MiB more`);
      });

      // The container's cgroup goes away under the open files (its process moved out first).
      moveToParentCgroup(setup.cgroup, setup.holder.process.pid!);
      await removeCgroupTreesWhenIdle(setup.cgroup.dirs);
      const afterRemoval = await setup.holder.send("read");
      const containerIndex = paths.findIndex((path) => path.includes("/containers/"));
      assert.equal(afterRemoval[containerIndex], "No such file or directory");
    });
  });
}

describeBackend("kernel", startFuseServer, ({ mountpoint, id }) => [join(mountpoint, "proc", "meminfo"), join(mountpoint, "containers", id, "proc", "meminfo")]);
describeBackend("fuse-native", startNativeFuseServer, ({ mountpoint, id }) => [join(mountpoint, "containers", id, "proc", "meminfo")]);

describe("loadavg through `procview fuse`", () => {
  test("a busy cgroup's averages rise within two samples; an idle one starts and stays at 0.00; both layouts agree", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "procview-loadavg-"));
    chmodSync(dir, 0o755);
    const cleanups: (() => unknown)[] = [];
    // In reverse order of set-up: the server before the cgroups and the folder it mounts in.
    t.after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const unique = `procview-loadavg-${process.pid}-${Date.now()}`;
    const busy = makeCgroup(`/${unique}-busy`, 64 * MiB, undefined, spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" }));
    cleanups.push(() => removeCgroup(busy));
    // A throttled thread stays runnable (R): a 10 % quota keeps the loop from taking a shared core.
    for (const cgroupDir of busy.dirs) {
      if (existsSync(join(cgroupDir, "cpu.cfs_quota_us"))) writeFileSync(join(cgroupDir, "cpu.cfs_quota_us"), "10000");
      if (existsSync(join(cgroupDir, "cpu.max"))) writeFileSync(join(cgroupDir, "cpu.max"), "10000 100000");
    }
    const idle = makeCgroup(`/${unique}-idle`, 64 * MiB, undefined);
    cleanups.push(() => removeCgroup(idle));
    const registry = new ContainerRegistry(join(dir, "state"));
    registry.put({ id: "busy", cgroupPath: busy.path, recordedAt: Date.now() });
    registry.put({ id: "idle", cgroupPath: idle.path, recordedAt: Date.now() });

    const server = await startProcviewFuse({ dir });
    cleanups.push(() => server.stop());
    const loadavg = (id: string) => readFile(join(server.mountpoint, "containers", id, "proc", "loadavg"), "utf8");
    assert.match(await loadavg("idle"), new RegExp(`^0\\.00 0\\.00 0\\.00 0/1 ${idle.child.pid}\n$`));
    // Idle averages, or the kernel's first step from idle if a 5 s boundary passed meanwhile: never the host's.
    assert.match(await loadavg("busy"), /^(0\.00 0\.00 0\.00|0\.08 0\.02 0\.01) [01]\/1 \d+\n$/, "averages start idle");

    // The recorded cgroup is tracked from the server's start: two 5 s samples (and one boundary) at most.
    const started = Date.now();
    let busyText = await loadavg("busy");
    while (busyText.startsWith("0.00 ") && Date.now() - started < 15_000) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      busyText = await loadavg("busy");
    }
    assert.ok(Number(busyText.split(" ")[0]) > 0, `busy loadavg rose within 15 s: ${busyText}`);
    assert.match(await loadavg("idle"), /^0\.00 0\.00 0\.00 /);

    // The LXCFS layout, read by a process in the busy cgroup, shows the same table entry.
    const script = 'for d in "$@"; do echo $$ > "$d/cgroup.procs"; done; exec cat "$0"';
    const { stdout } = await run("sh", ["-c", script, join(server.mountpoint, "proc", "loadavg"), ...busy.dirs]);
    assert.ok(Number(stdout.split(" ")[0]) > 0, `the reader's own cgroup: ${stdout}`);
    assert.ok(server.records().every((record) => record.level !== "error"), "no sampling error logged");
  });
});

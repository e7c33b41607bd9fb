/**
 * The FUSE server against the real kernel: a real mount of the fixture tree (needs
 * root and /dev/fuse), read through ordinary file system calls and child processes.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createLogger } from "../core/log.ts";
import { debianPackage } from "../integration/debian-packages.ts";
import { checkFuseLiveness, hostLivenessProbe, readFuseStatus } from "../core/fuse-status.ts";
import { startFuseServer, type FuseServer } from "./daemon.ts";
import { isProcviewMount, mountFuse, openFuseDevice, unmountFuse } from "./kernel/mount.ts";
import { errorCodeOf, eventually } from "./kernel/testdata/expect.ts";

const run = promisify(execFile);
const here = import.meta.url;
const fixtureTree = new URL("./kernel/testdata/fixture-tree.ts", here).href;

interface Sandbox {
  dir: string;
  mountpoint: string;
  stateDir: string;
  dynamicDir: string;
  logLines: string[];
}

function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), "procview-fuse-test-"));
  chmodSync(dir, 0o755); // non-root readers must reach the mount
  const dynamicDir = join(dir, "dynamic");
  mkdirSync(dynamicDir);
  return { dir, mountpoint: join(dir, "mnt", "nested"), stateDir: join(dir, "state"), dynamicDir, logLines: [] };
}

function start(box: Sandbox, workers = 2): Promise<FuseServer> {
  return startFuseServer({
    mountpoint: box.mountpoint,
    stateDir: box.stateDir,
    treeModule: fixtureTree,
    treeOptions: { dynamicDir: box.dynamicDir },
    workers,
    logger: createLogger({ write: (line) => box.logLines.push(line) }),
  });
}

function cleanup(box: Sandbox): void {
  if (isProcviewMount(box.mountpoint)) {
    execFile("umount", ["-c", "-l", box.mountpoint]);
  }
  rmSync(box.dir, { recursive: true, force: true });
}

describe("a mounted fixture tree", () => {
  const box = sandbox();
  let server: FuseServer;
  const file = (name: string) => join(box.mountpoint, name);

  before(async () => {
    server = await start(box);
  });
  after(() => cleanup(box));

  test("mounts as fuse.procview at the created mountpoint and announces itself", async () => {
    assert.equal(server.mountpoint, box.mountpoint);
    assert.ok(isProcviewMount(box.mountpoint));
    assert.deepEqual(
      { pid: readFuseStatus(box.stateDir)?.pid, mountpoint: readFuseStatus(box.stateDir)?.mountpoint },
      { pid: process.pid, mountpoint: box.mountpoint },
    );
    assert.equal((await checkFuseLiveness(box.mountpoint, hostLivenessProbe(box.stateDir))).live, true);
  });

  test("files read whole, content built at every open", () => {
    assert.equal(readFileSync(file("hello.txt"), "utf8"), "hello, fuse\n");
    const backing = join(box.dynamicDir, "state");
    writeFileSync(backing, "version one\n");
    assert.equal(readFileSync(file("dynamic/state"), "utf8"), "version one\n");
    writeFileSync(backing, "version two\n");
    assert.equal(readFileSync(file("dynamic/state"), "utf8"), "version two\n", "no page cache between opens");
    // One open, one snapshot: a change after the open does not show in later reads.
    const fd = openSync(file("dynamic/state"), "r");
    const head = Buffer.alloc(8);
    assert.equal(readSync(fd, head, 0, 8, null), 8);
    writeFileSync(backing, "VERSION THREE\n");
    const tail = Buffer.alloc(64);
    const tailLength = readSync(fd, tail, 0, 64, null);
    closeSync(fd);
    assert.equal(head.toString() + tail.subarray(0, tailLength).toString(), "version two\n");
    assert.equal(readFileSync(file("big.txt"), "utf8"), "0123456789abcdef".repeat(20_000), "many READs of one snapshot");
    assert.equal(readFileSync(file("sub/inner.txt"), "utf8"), "inner\n");
  });

  test("an open file read again from offset 0 renders again; each pass reads one rendering; a file gone meanwhile reads ENOENT", () => {
    const backing = join(box.dynamicDir, "rerendered");
    writeFileSync(backing, "version one\n");
    const fd = openSync(file("dynamic/rerendered"), "r");
    try {
      const pass = (changeAfter?: number, change?: string): string => {
        const bytes: number[] = [];
        const one = Buffer.alloc(1);
        // pread(2) one byte at a time, changing the backing mid-pass: the pass keeps its rendering.
        for (let position = 0; readSync(fd, one, 0, 1, position) === 1; position++) {
          bytes.push(one[0]);
          if (position === changeAfter) writeFileSync(backing, change!);
        }
        return Buffer.from(bytes).toString();
      };
      assert.equal(pass(3, "version two, longer\n"), "version one\n");
      assert.equal(pass(), "version two, longer\n");
      writeFileSync(backing, "three\n");
      const whole = Buffer.alloc(100);
      assert.equal(whole.toString("utf8", 0, readSync(fd, whole, 0, 100, 0)), "three\n", "one pread at 0");
      rmSync(backing);
      assert.equal(errorCodeOf(() => readSync(fd, whole, 0, 100, 0)), "ENOENT");
    } finally {
      closeSync(fd);
    }
    // A reader that keeps the file open and uses read(2), lseek(2) and sendfile(2) (procps reads, busybox copies).
    writeFileSync(backing, "first\n");
    const script = [
      "import os, sys",
      "fd = os.open(sys.argv[1], os.O_RDONLY)",
      "out = [os.read(fd, 4096)]",
      "open(sys.argv[2], 'w').write('second, longer\\n')",
      "os.lseek(fd, 0, os.SEEK_SET)",
      "out.append(os.read(fd, 4096))",
      "open(sys.argv[2], 'w').write('third, longer still\\n')",
      "os.lseek(fd, 0, os.SEEK_SET)",
      "out.append(os.read(fd, 4096))",
      "r, w = os.pipe()",
      "n = os.sendfile(w, fd, 0, 4096)",
      "out.append(os.read(r, 4096))",
      "print(repr([x.decode() for x in out]))",
    ].join("\n");
    assert.equal(
      execFileSync("python3", ["-c", script, file("dynamic/rerendered"), backing], { encoding: "utf8" }).trim(),
      String.raw`['first\n', 'second, longer\n', 'third, longer still\n', 'third, longer still\n']`,
    );
  });

  test("sendfile readers get each open's whole snapshot, longer or shorter than the last", async () => {
    const busybox = join(await debianPackage("busybox-static", "bookworm"), "bin", "busybox");
    // busybox cat reads with sendfile(2), which goes through the page cache only up to the
    // kernel's size of the file, not through our READ until EOF as read(2) does.
    const backing = join(box.dynamicDir, "state");
    for (const content of ["short\n", "a much longer second version\n".repeat(300), "tiny\n"]) {
      writeFileSync(backing, content);
      assert.equal(execFileSync(busybox, ["cat", file("dynamic/state")], { encoding: "utf8", timeout: 30_000 }), content);
    }
  });

  test("mmap: a private mapping of an open file reads its rendering; a shared one is refused (ENODEV)", async () => {
    // Python's mmap sizes the mapping by fstat: the opener is told its rendering's length, so
    // no touch lands past the size the kernel knows (SIGBUS); a 4 KiB mapping of a
    // 12-byte file reads zeros after the content, as for any short file.
    const script = [
      "import ctypes, mmap, os, sys",
      "fd = os.open(sys.argv[1], os.O_RDONLY)",
      "m = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ)",
      "libc = ctypes.CDLL(None, use_errno=True)",
      "libc.mmap.restype = ctypes.c_void_p",
      "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]",
      "fixed = libc.mmap(None, 4096, mmap.PROT_READ, mmap.MAP_PRIVATE, fd, 0)",
      "shared = libc.mmap(None, 4096, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)",
      "print(repr([m[:].decode(), ctypes.string_at(fixed, 16).decode(), os.strerror(ctypes.get_errno()) if shared == ctypes.c_void_p(-1).value else 'mapped']))",
    ].join("\n");
    const output = execFileSync("python3", ["-c", script, file("hello.txt")], { encoding: "utf8", timeout: 10_000 }).trim();
    assert.equal(output, String.raw`['hello, fuse\n', 'hello, fuse\n\x00\x00\x00\x00', 'No such device']`);
    const big = execFileSync("python3", ["-c", "import mmap, os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint(len(mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ)[:]))", file("big.txt")], {
      encoding: "utf8",
      timeout: 10_000,
    });
    assert.equal(big.trim(), String(16 * 20_000), "many pages, each read through READ");
    // The kernel keeps attributes a minute: a process without the file open sees the size it
    // holds, the last opener's length here (procfs says 0; LXCFS also gives a length).
    assert.equal(statSync(file("hello.txt")).size, "hello, fuse\n".length);
  });

  test("directories list their names", () => {
    assert.deepEqual(readdirSync(box.mountpoint).sort(), ["audited", "big.txt", "broken.txt", "denied.txt", "dynamic", "hello.txt", "sub", "whoami.txt"]);
    const entries = readdirSync(box.mountpoint, { withFileTypes: true });
    assert.ok(entries.find((entry) => entry.name === "sub")?.isDirectory());
    assert.ok(entries.find((entry) => entry.name === "hello.txt")?.isFile());
  });

  test("stat: files 0444 with size 0 like procfs, directories 0555", () => {
    const stat = statSync(file("sub/inner.txt"));
    assert.equal(stat.mode, 0o100444);
    assert.equal(stat.size, 0);
    assert.equal(statSync(file("sub")).mode, 0o040555);
    assert.equal(statSync(box.mountpoint).mode, 0o040555);
  });

  test("nothing can be written: EROFS", () => {
    assert.equal(errorCodeOf(() => writeFileSync(file("hello.txt"), "x")), "EROFS");
    assert.equal(errorCodeOf(() => writeFileSync(file("new.txt"), "x")), "EROFS");
    assert.equal(errorCodeOf(() => mkdirSync(file("newdir"))), "EROFS");
  });

  test("a missing name is ENOENT, and a name that appears later is found at once", () => {
    assert.equal(errorCodeOf(() => readFileSync(file("dynamic/late"))), "ENOENT");
    writeFileSync(join(box.dynamicDir, "late"), "arrived\n");
    assert.equal(readFileSync(file("dynamic/late"), "utf8"), "arrived\n");
  });

  test("ids the kernel forgets are dropped: names coming and going do not grow the node table", async () => {
    // STATFS reports the server's live node ids as `files`.
    const liveIds = () => statfsSync(box.mountpoint).files;
    const before = liveIds();
    const names = Array.from({ length: 300 }, (_, i) => `container-${i}`);
    for (const name of names) writeFileSync(join(box.dynamicDir, name), name);
    for (const name of names) assert.equal(readFileSync(file(`dynamic/${name}`), "utf8"), name);
    assert.ok(liveIds() >= before + names.length);
    for (const name of names) rmSync(join(box.dynamicDir, name));
    // Evicting dentries and inodes makes the kernel send FORGET for every id it held.
    writeFileSync("/proc/sys/vm/drop_caches", "2");
    await eventually(() => liveIds() < before + 10);
  });

  test("a node that throws is EIO (and logged), an FsError its errno; serving goes on", async () => {
    assert.equal(errorCodeOf(() => readFileSync(file("broken.txt"))), "EIO");
    await eventually(() => box.logLines.some((line) => line.includes("fixture node failure") && line.includes('"level":"error"')));
    assert.equal(errorCodeOf(() => readFileSync(file("denied.txt"))), "EACCES");
    assert.equal(readFileSync(file("hello.txt"), "utf8"), "hello, fuse\n");
  });

  test("8 concurrent readers each get the whole file", async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => run("cat", [file("big.txt")], { maxBuffer: 1 << 20 })));
    for (const { stdout } of results) assert.equal(stdout, "0123456789abcdef".repeat(20_000));
  });

  test("a non-root reader can read (allow_other)", async () => {
    const { stdout } = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "cat", file("hello.txt")]);
    assert.equal(stdout, "hello, fuse\n");
  });

  test("the node sees the reading process's pid, uid and gid", async () => {
    const child = spawn("setpriv", ["--reuid=65534", "--regid=65533", "--clear-groups", "cat", file("whoami.txt")], { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    await new Promise((resolve) => child.on("close", resolve));
    // setpriv execs cat in the same process, so the pid is the child's.
    assert.deepEqual(JSON.parse(output), { pid: child.pid, uid: 65534, gid: 65533 });
  });

  test("stop unmounts and clears the status file; closed stays for unplanned ends", async () => {
    await server.stop();
    const settled = await Promise.race([server.closed.then(() => "closed"), new Promise((resolve) => setTimeout(resolve, 50, "pending"))]);
    assert.equal(settled, "pending");
    assert.equal(isProcviewMount(box.mountpoint), false);
    assert.equal(readFileSync("/proc/self/mountinfo", "utf8").includes(box.mountpoint), false);
    assert.equal(readFuseStatus(box.stateDir), undefined);
    await server.stop();
  });
});

describe("starting and ending", () => {
  test("a mountpoint that is a file is a clear error", async () => {
    const box = sandbox();
    try {
      mkdirSync(join(box.dir, "mnt"));
      writeFileSync(box.mountpoint, "");
      await assert.rejects(start(box), /is not a directory/);
    } finally {
      cleanup(box);
    }
  });

  test("a mountpoint below a file is a clear error", async () => {
    const box = sandbox();
    try {
      writeFileSync(join(box.dir, "mnt"), "");
      await assert.rejects(start(box), /cannot create mountpoint/);
    } finally {
      cleanup(box);
    }
  });

  test("a stale procview mount of a dead server is removed first, and logged", async () => {
    const box = sandbox();
    try {
      mkdirSync(box.mountpoint, { recursive: true });
      const fd = openFuseDevice();
      await mountFuse(fd, box.mountpoint);
      closeSync(fd); // the "server" dies: the mount stays, dead
      assert.equal(errorCodeOf(() => statSync(box.mountpoint)), "ENOTCONN");
      const server = await start(box);
      assert.ok(box.logLines.some((line) => line.includes("stale procview mount") && line.includes('"level":"warn"')));
      assert.equal(readFileSync(join(box.mountpoint, "hello.txt"), "utf8"), "hello, fuse\n");
      await server.stop();
      assert.equal(readFileSync("/proc/self/mountinfo", "utf8").includes(box.mountpoint), false, "the stale mount is gone too");
    } finally {
      cleanup(box);
    }
  });

  test("a live procview mount is not mounted over", async () => {
    const box = sandbox();
    try {
      const server = await start(box);
      await assert.rejects(start(box), /already served by a live procview FUSE server/);
      await server.stop();
    } finally {
      cleanup(box);
    }
  });

  test("a tree module without createTree fails the start and leaves no mount", async () => {
    const box = sandbox();
    try {
      await assert.rejects(
        startFuseServer({ mountpoint: box.mountpoint, stateDir: box.stateDir, treeModule: new URL("../core/views.ts", here).href, treeOptions: {}, logger: createLogger({ write: () => {} }) }),
        /does not export createTree/,
      );
      assert.equal(isProcviewMount(box.mountpoint), false);
      assert.equal(existsSync(join(box.stateDir, "fuse.json")), false);
    } finally {
      cleanup(box);
    }
  });

  test("a state dir that cannot be written fails the start and leaves no mount", async () => {
    const box = sandbox();
    try {
      writeFileSync(join(box.dir, "not-a-dir"), "");
      await assert.rejects(start({ ...box, stateDir: join(box.dir, "not-a-dir", "state") }), /cannot write the FUSE status file/);
      assert.equal(isProcviewMount(box.mountpoint), false);
    } finally {
      cleanup(box);
    }
  });

  test("a process that exits without stop() ends at once and leaves no mount", async () => {
    const box = sandbox();
    const serveScript = fileURLToPath(new URL("./kernel/testdata/serve-fixture.ts", here));
    const child = spawn(process.execPath, [serveScript, box.mountpoint, box.stateDir, box.dynamicDir, "2"], { stdio: ["pipe", "pipe", "ignore"] });
    let exitCode: number | null | undefined;
    child.on("exit", (code) => (exitCode = code));
    try {
      let output = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
      await eventually(() => output.includes("serving"));
      assert.equal(readFileSync(join(box.mountpoint, "hello.txt"), "utf8"), "hello, fuse\n");
      child.stdin.write("exit\n");
      await eventually(() => exitCode !== undefined);
      assert.equal(exitCode, 3);
      assert.equal(isProcviewMount(box.mountpoint), false);
      assert.equal(readFuseStatus(box.stateDir), undefined);
    } finally {
      if (exitCode === undefined) child.kill("SIGKILL");
      cleanup(box);
    }
  });

  test("an unmount from outside settles closed and clears the status file", async () => {
    const box = sandbox();
    try {
      const server = await start(box, 3);
      await unmountFuse(box.mountpoint);
      await server.closed;
      assert.equal(readFuseStatus(box.stateDir), undefined);
      await server.stop();
    } finally {
      cleanup(box);
    }
  });
});

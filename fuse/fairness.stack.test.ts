/**
 * One reader cannot deny the others (real mount, root, /dev/fuse, a writable cgroup
 * hierarchy): a process of uid 65534 in a cgroup of its own opens views until it is
 * refused, and holds them, while root and a reader in another cgroup keep opening.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createLogger } from "../core/log.ts";
import { startFuseServer } from "./daemon.ts";
import { defaultHandleStoreSize } from "./kernel/handle-store.ts";
import { isProcviewMount } from "./kernel/mount.ts";
import { makeCgroup, removeCgroup } from "./testdata/test-cgroup.ts";

const here = import.meta.url;
const fixtureTree = new URL("./kernel/testdata/fixture-tree.ts", here).href;
const MiB = 1024 * 1024;
const answerTimeoutMs = 60_000;

/** Opens the file until refused (or `limit` opens), prints how many and the errno, holds them until stdin closes. */
const greedyScript = String.raw`
import errno, os, sys
fds = []
error = 'none'
while len(fds) < int(sys.argv[2]):
    try: fds.append(os.open(sys.argv[1], os.O_RDONLY))
    except OSError as e:
        error = errno.errorcode[e.errno]
        break
print(len(fds), error, flush=True)
sys.stdin.read()
`;

test("a uid-65534 reader holding its bound of open views gets EMFILE alone; root and other cgroups keep opening", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "procview-fairness-"));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, "dynamic"));
  const logLines: string[] = [];
  const cleanups: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const server = await startFuseServer({
    mountpoint: join(dir, "mnt"),
    stateDir: join(dir, "state"),
    treeModule: fixtureTree,
    treeOptions: { dynamicDir: join(dir, "dynamic") },
    logger: createLogger({ write: (line) => logLines.push(line) }),
  });
  cleanups.push(() => server.stop());
  const view = join(server.mountpoint, "hello.txt");

  // The attack: 16,384 opens (the old table's size) as uid 65534, from a cgroup of its own.
  const unique = `procview-fairness-${process.pid}-${Date.now()}`;
  const holder = makeCgroup(`/${unique}-greedy`, 256 * MiB, undefined);
  cleanups.push(() => removeCgroup(holder));
  const join_ = `for d in ${holder.dirs.join(" ")}; do echo $$ > $d/cgroup.procs; done; `;
  const greedy = spawn("sh", ["-c", `${join_}exec prlimit --nofile=20000:20000 setpriv --reuid=65534 --regid=65534 --clear-groups python3 -c "$0" "$1" 16384`, greedyScript, view], {
    stdio: ["pipe", "pipe", "inherit"],
    // The system's python3: uid 65534 cannot run one from root's home (pyenv).
    env: { ...process.env, PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
  });
  cleanups.push(() => greedy.kill("SIGKILL"));
  const lines = createInterface({ input: greedy.stdout })[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const answer = await Promise.race([
    lines.next(),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("the greedy reader never answered")), answerTimeoutMs))),
  ]).finally(() => clearTimeout(timer));
  assert.equal(answer.value, `${defaultHandleStoreSize.handlesPerReader} EMFILE`);

  // While it holds them: root (the test's own cgroup) and another cgroup's reader open and read.
  // Asynchronous: with the default serving on the main thread, a synchronous read here would wait for itself.
  for (let i = 0; i < 100; i++) assert.equal(await readFile(view, "utf8"), "hello, fuse\n");
  const other = makeCgroup(`/${unique}-other`, 256 * MiB, undefined, spawn("sh", ["-c", `sleep 0.3; exec setpriv --reuid=65534 --regid=65534 --clear-groups cat ${view}`], { stdio: ["ignore", "pipe", "ignore"] }));
  cleanups.push(() => removeCgroup(other));
  let otherOutput = "";
  other.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (otherOutput += chunk));
  const code = await new Promise<number | null>((resolve) => other.child.once("exit", (exitCode) => resolve(exitCode)));
  assert.deepEqual([code, otherOutput], [0, "hello, fuse\n"], "uid 65534 in another cgroup is not the greedy one");

  const warnings = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((record) => record.level === "warn");
  assert.equal(warnings.length, 1, "logged once, not once per refusal");
  assert.match(String(warnings[0].reader), new RegExp(`${unique}-greedy`));
  assert.deepEqual([warnings[0].uid, warnings[0].limit], [65534, defaultHandleStoreSize.handlesPerReader]);

  // Its handles go back when it ends: a reader of its cgroup opens again.
  greedy.stdin!.end();
  await new Promise((resolve) => greedy.once("exit", resolve));
  const again = spawn("sh", ["-c", `${join_}exec cat ${view}`], { stdio: ["ignore", "pipe", "ignore"] });
  let againOutput = "";
  again.stdout.setEncoding("utf8").on("data", (chunk: string) => (againOutput += chunk));
  assert.deepEqual([await new Promise<number | null>((resolve) => again.once("exit", resolve)), againOutput], [0, "hello, fuse\n"]);
  assert.ok(isProcviewMount(server.mountpoint));
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { tarArchive, type TarEntry } from "./tar-writer.ts";

const execFileAsync = promisify(execFile);

// GNU tar is the independent reader: what it lists and extracts is what containerd will see.
async function withArchive(entries: TarEntry[], check: (dir: string, tarPath: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "procview-tar-test-"));
  try {
    const tarPath = join(dir, "test.tar");
    await writeFile(tarPath, tarArchive(entries));
    await check(dir, tarPath);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const longDir = `${"d".repeat(90)}/${"e".repeat(40)}`;
const entries: TarEntry[] = [
  { type: "directory", path: "bin" },
  { type: "file", path: "bin/tool", content: Buffer.from("#!/bin/sh\necho hi\n"), mode: 0o755 },
  { type: "symlink", path: "bin/sh", target: "tool" },
  { type: "directory", path: "tmp", mode: 0o1777 },
  { type: "file", path: "empty", content: new Uint8Array(0) },
  { type: "file", path: "block", content: new Uint8Array(512).fill(7) },
  { type: "directory", path: longDir },
  { type: "file", path: `${longDir}/f`, content: Buffer.from("deep") },
];

test("GNU tar lists every entry with its type, mode, owner, size and link target", async () => {
  await withArchive(entries, async (_dir, tarPath) => {
    const { stdout } = await execFileAsync("tar", ["--utc", "-tvf", tarPath]);
    const lines = stdout.trim().split("\n").map((line) => line.replace(/\s+/g, " "));
    assert.deepEqual(lines, [
      "drwxr-xr-x root/root 0 1970-01-01 00:00 bin/",
      "-rwxr-xr-x root/root 18 1970-01-01 00:00 bin/tool",
      "lrwxrwxrwx root/root 0 1970-01-01 00:00 bin/sh -> tool",
      "drwxrwxrwt root/root 0 1970-01-01 00:00 tmp/",
      "-rw-r--r-- root/root 0 1970-01-01 00:00 empty",
      "-rw-r--r-- root/root 512 1970-01-01 00:00 block",
      `drwxr-xr-x root/root 0 1970-01-01 00:00 ${longDir}/`,
      `-rw-r--r-- root/root 4 1970-01-01 00:00 ${longDir}/f`,
    ]);
  });
});

test("GNU tar extracts the same bytes and symlinks", async () => {
  await withArchive(entries, async (dir, tarPath) => {
    const out = join(dir, "out");
    await execFileAsync("mkdir", [out]);
    await execFileAsync("tar", ["-xf", tarPath, "-C", out]);
    assert.equal(await readFile(join(out, "bin/tool"), "utf8"), "#!/bin/sh\necho hi\n");
    assert.equal((await stat(join(out, "bin/tool"))).mode & 0o777, 0o755);
    assert.equal(await readlink(join(out, "bin/sh")), "tool");
    assert.deepEqual(await readFile(join(out, "block")), Buffer.alloc(512, 7));
    assert.equal(await readFile(join(out, longDir, "f"), "utf8"), "deep");
  });
});

test("the archive is whole 512-byte blocks ending in two zero blocks, and reproducible", () => {
  const archive = tarArchive(entries);
  assert.equal(archive.length % 512, 0);
  assert.ok(archive.subarray(archive.length - 1024).every((byte) => byte === 0));
  assert.deepEqual(tarArchive(entries), archive);
  // header + 18 bytes padded to one block
  assert.equal(tarArchive([{ type: "file", path: "a", content: new Uint8Array(18) }]).length, 512 + 512 + 1024);
});

test("paths that ustar cannot hold are refused with a clear error", () => {
  assert.throws(() => tarArchive([{ type: "file", path: "x".repeat(101), content: new Uint8Array() }]), /does not fit a ustar header/);
  assert.throws(() => tarArchive([{ type: "directory", path: "/abs" }]), /must be relative/);
  assert.throws(() => tarArchive([{ type: "symlink", path: "l", target: "t".repeat(101) }]), /symlink target longer/);
});

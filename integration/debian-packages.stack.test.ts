import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { debianPackage } from "./debian-packages.ts";

const moduleUrl = import.meta.url;

// Real apt-get download from the machine's Debian mirror: the harness needs nothing mocked here.

test("concurrent first calls share one unpacked package under .cache/debian/<suite>/<name>", async () => {
  // Debian's tiny `hello` is used by no other test, so its cache can be emptied here.
  const cached = join(fileURLToPath(new URL("..", moduleUrl)), ".cache", "debian", "bookworm", "hello");
  await rm(cached, { recursive: true, force: true });
  const [first, second] = await Promise.all([debianPackage("hello", "bookworm"), debianPackage("hello", "bookworm")]);
  assert.equal(first, cached);
  assert.equal(second, cached);
  assert.ok((await stat(join(cached, "usr", "bin", "hello"))).isFile());
  const leftovers = (await readdir(join(cached, ".."))).filter((entry) => entry.startsWith(".") && entry.includes("-hello-"));
  assert.deepEqual(leftovers, [], "no staging or download folders stay behind");
  assert.equal(await debianPackage("hello", "bookworm"), cached);
});

test("a trixie package comes from the private trixie sources", async () => {
  const dir = await debianPackage("containerd", "trixie");
  assert.match(dir, /\/\.cache\/debian\/trixie\/containerd$/);
  assert.ok((await stat(join(dir, "usr", "bin", "containerd"))).isFile());
});

test("names that are not Debian package names are refused before apt runs", async () => {
  await assert.rejects(debianPackage("../etc", "bookworm"), /not a Debian package name: "..\/etc"/);
  await assert.rejects(debianPackage("-oFoo=bar", "bookworm"), /not a Debian package name/);
});

test("a package the mirror does not have fails with a clear error", async () => {
  await assert.rejects(
    debianPackage("procview-no-such-package", "bookworm"),
    /cannot fetch Debian package procview-no-such-package \(bookworm\):.*Unable to locate package/s,
  );
});

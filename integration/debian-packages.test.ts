import { test } from "node:test";
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { debianPackage } from "./debian-packages.ts";

// Real apt-get download from the machine's Debian mirror: the harness needs nothing mocked here.

test("concurrent calls share one unpacked package under .cache/debian/<suite>/<name>", async () => {
  const [first, second] = await Promise.all([
    debianPackage("busybox-static", "bookworm"),
    debianPackage("busybox-static", "bookworm"),
  ]);
  assert.equal(first, second);
  assert.match(first, /\/\.cache\/debian\/bookworm\/busybox-static$/);
  assert.ok((await stat(join(first, "bin", "busybox"))).isFile());
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

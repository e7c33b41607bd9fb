import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { version, versionText } from "./version.ts";

test("the version constant is package.json's", () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  assert.equal(version, pkg.version);
});

test("versionText names procview's version and the runtime", () => {
  assert.equal(versionText("node", "24.21.0"), `procview ${version} (node 24.21.0)\n`);
  assert.match(version, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
});

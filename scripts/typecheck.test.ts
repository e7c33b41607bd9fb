import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

test("the whole project type-checks under strict TypeScript", () => {
  const result = spawnSync("npx", ["--no-install", "tsc", "-p", "tsconfig.json"], { cwd: root, encoding: "utf8" });
  assert.equal(result.status, 0, `tsc reported:\n${result.stdout}${result.stderr}`);
});

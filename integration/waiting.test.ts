import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { firstLine } from "./waiting.ts";

function shell(script: string) {
  return spawn("sh", ["-c", script], { stdio: ["ignore", "pipe", "pipe"] });
}

test("firstLine gives the child's first line once it is complete", async () => {
  const child = shell("printf 'one'; sleep 0.1; printf ' two\\nthree\\n'; sleep 5");
  try {
    assert.equal(await firstLine(child, 10_000), "one two");
  } finally {
    child.kill();
  }
});

test("a child that dies before writing a line fails the wait at once, quoting its stderr", async () => {
  const started = Date.now();
  await assert.rejects(firstLine(shell("echo 'cannot start dockerd' >&2; exit 4"), 60_000), /exited \(code 4\) before writing a line; stderr:\ncannot start dockerd/);
  assert.ok(Date.now() - started < 10_000, "not after the timeout");
});

test("a child that stays silent fails the wait after the timeout", async () => {
  const child = shell("sleep 30");
  try {
    await assert.rejects(firstLine(child, 200), /no line from the child within 200 ms/);
  } finally {
    child.kill();
  }
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "./log.ts";

test("logger writes one JSON object per line with merged fields", () => {
  const lines: string[] = [];
  const log = createLogger({
    write: (line) => lines.push(line),
    now: () => new Date("2026-01-02T03:04:05.000Z"),
    fields: { component: "nri" },
  });
  log.child({ container: "abc" }).warn("no cgroup", { err: Object.assign(new Error("gone"), { code: "ENOENT" }) });
  assert.equal(lines.length, 1);
  assert.ok(lines[0].endsWith("\n"));
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "2026-01-02T03:04:05.000Z",
    level: "warn",
    msg: "no cgroup",
    component: "nri",
    container: "abc",
    err: { message: "gone", code: "ENOENT" },
  });
});

test("records below the level are dropped", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "warn", write: (line) => lines.push(line) });
  log.info("quiet");
  log.debug("quieter");
  log.error("loud");
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]).msg, "loud");
});

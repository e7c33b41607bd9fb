import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "./log.ts";
import { limitedLogger } from "./log-limiter.ts";

function recorder() {
  const records: Array<Record<string, unknown>> = [];
  const logger = createLogger({ write: (line) => records.push(JSON.parse(line)) });
  return { records, logger };
}

test("a flood of one warning logs its first event, then one line per interval with the count left out", () => {
  const { records, logger } = recorder();
  let clock = 0;
  const limited = limitedLogger(logger, { intervalMs: 1000, now: () => clock });
  for (let frame = 0; frame < 20_000; frame++) {
    clock = frame / 10; // 20,000 frames over 2 s
    limited.warn("dropped frame", { connId: 7 });
  }
  clock = 2500;
  limited.warn("dropped frame", { connId: 8 });
  assert.deepEqual(
    records.map((r) => [r.msg, r.connId, r.suppressed]),
    [
      ["dropped frame", 7, undefined],
      ["dropped frame", 7, 9999],
      ["dropped frame", 8, 9999],
    ],
  );
});

test("different warnings are limited separately", () => {
  const { records, logger } = recorder();
  const limited = limitedLogger(logger, { intervalMs: 1000, now: () => 0 });
  limited.warn("a");
  limited.warn("b");
  limited.warn("a");
  assert.deepEqual(records.map((r) => r.msg), ["a", "b"]);
});

test("the count of a flood that stops is logged at the end of its interval", async () => {
  const { records, logger } = recorder();
  const limited = limitedLogger(logger, { intervalMs: 30 });
  for (let i = 0; i < 5; i++) limited.warn("dropped frame", { connId: i });
  assert.equal(records.length, 1);
  const deadline = Date.now() + 5000;
  while (records.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(records.map((r) => [r.connId, r.suppressed]), [[0, undefined], [4, 4]]);
});

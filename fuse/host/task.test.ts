import { test } from "node:test";
import assert from "node:assert/strict";
import { countTaskStates, oldestStartTicks, parseStartTicks, parseTaskStatus, readTaskStatus } from "./task.ts";
import { fixtureProcDir } from "./testdata/paths.ts";

test("status: state letter and the pid in the innermost namespace", () => {
  assert.deepEqual(parseTaskStatus("Name:\tx\nState:\tD (disk sleep)\nPid:\t900\nNSpid:\t900\t12\n"), { state: "D", namespacePid: 12 });
  assert.deepEqual(parseTaskStatus("State:\tS (sleeping)\nPid:\t42\n"), { state: "S", namespacePid: 42 }, "kernels without NSpid");
  assert.equal(parseTaskStatus("Name:\tx\n"), undefined);
});

test("stat: start time counted after the last ')' of the command name", () => {
  const fields = ["S", ...Array.from({ length: 18 }, (_, i) => String(i)), "4242", "0"];
  assert.equal(parseStartTicks(`7 (a) b) ${fields.join(" ")}\n`), 4242);
  assert.equal(parseStartTicks("garbage"), undefined);
});

test("tasks that exited are skipped, not errors", () => {
  assert.equal(readTaskStatus(fixtureProcDir, 105), undefined);
  assert.deepEqual(countTaskStates(fixtureProcDir, [101, 102, 103, 104, 105]), { running: 2, blocked: 1, total: 4, lastPid: 12 });
  assert.equal(oldestStartTicks(fixtureProcDir, [102, 101, 105]), 500);
  assert.equal(oldestStartTicks(fixtureProcDir, [105]), undefined);
});

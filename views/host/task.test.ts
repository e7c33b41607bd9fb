import { test } from "node:test";
import assert from "node:assert/strict";
import { countsForReader, countTaskStates, oldestStartTicks, parseProcessStat, parseTaskStatus, readTaskStatus } from "./task.ts";
import { fixtureProcDir } from "./testdata/paths.ts";

test("status: state letter and the pid in the innermost namespace", () => {
  assert.deepEqual(parseTaskStatus("Name:\tx\nState:\tD (disk sleep)\nPid:\t900\nNSpid:\t900\t12\n"), { state: "D", namespacePid: 12 });
  assert.deepEqual(parseTaskStatus("State:\tS (sleeping)\nPid:\t42\n"), { state: "S", namespacePid: 42 }, "kernels without NSpid");
  assert.equal(parseTaskStatus("Name:\tx\n"), undefined);
});

test("stat: parent and start time counted after the last ')' of the command name", () => {
  const fields = ["S", "31", ...Array.from({ length: 17 }, (_, i) => String(i)), "4242", "0"];
  assert.deepEqual(parseProcessStat(`7 (a) b) ${fields.join(" ")}\n`), { parentPid: 31, startTicks: 4242 });
  assert.equal(parseProcessStat("garbage"), undefined);
});

test("tasks that exited are skipped, not errors", () => {
  assert.equal(readTaskStatus(fixtureProcDir, 105), undefined);
  assert.deepEqual(countTaskStates(fixtureProcDir, [101, 102, 103, 104, 105]), { running: 2, blocked: 1, total: 4, lastPid: 12 });
  assert.equal(oldestStartTicks(fixtureProcDir, [102, 101, 105]), 500);
  assert.equal(oldestStartTicks(fixtureProcDir, [105]), undefined);
});

test("the reading thread counts as running whatever state it shows while it waits for the reply", () => {
  assert.deepEqual(countTaskStates(fixtureProcDir, [101, 102, 103, 104, 105], 101), { running: 3, blocked: 1, total: 4, lastPid: 12 });
  assert.deepEqual(countTaskStates(fixtureProcDir, [101, 102, 103, 104, 105], 104), { running: 3, blocked: 0, total: 4, lastPid: 12 }, "a reader waiting killably shows D");
  assert.deepEqual(countTaskStates(fixtureProcDir, [101, 102, 103, 104, 105], 301), { running: 2, blocked: 1, total: 4, lastPid: 12 }, "a reader outside the cgroup is not its task");
});

test("a shared sample counts each reader as running: in state D, asleep, or joined since the sample", () => {
  const sample = {
    counts: { running: 1, blocked: 1, total: 3, lastPid: 30 },
    states: new Map([
      [10, "R"],
      [20, "D"],
      [30, "S"],
    ]),
  };
  assert.deepEqual(countsForReader(sample, 10), sample.counts, "running already");
  assert.deepEqual(countsForReader(sample, 20), { running: 2, blocked: 0, total: 3, lastPid: 30 }, "waiting on the FUSE reply");
  assert.deepEqual(countsForReader(sample, 30), { running: 2, blocked: 1, total: 3, lastPid: 30 });
  assert.deepEqual(countsForReader(sample, 40), sample.counts, "a reader outside the cgroup");
  assert.deepEqual(countsForReader(sample, 40, true), { running: 2, blocked: 1, total: 4, lastPid: 30 }, "a reader that joined after the sample");
});

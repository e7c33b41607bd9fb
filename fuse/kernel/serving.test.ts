import { test } from "node:test";
import assert from "node:assert/strict";
import { LookingPolicy } from "./serving.ts";
import { createLoopControl, endSpin, tryStartSpin } from "./loop-control.ts";

/** How many of the next `replies` the policy looks after, each look finding what `finds` says. */
function looksAmong(policy: LookingPolicy, replies: number, finds: boolean): number {
  let looks = 0;
  for (let i = 0; i < replies; i++) {
    if (!policy.worthIt()) continue;
    looks++;
    policy.found(finds);
  }
  return looks;
}

test("a serving thread looks after every reply while its looks find requests", () => {
  assert.equal(looksAmong(new LookingPolicy(), 100, true), 100);
});

test("after looks that find nothing it sleeps at once, twice as many replies after each miss, up to 64", () => {
  const policy = new LookingPolicy();
  const pattern: boolean[] = [];
  for (let i = 0; i < 300; i++) {
    const looked = policy.worthIt();
    pattern.push(looked);
    if (looked) policy.found(false);
  }
  const looksAt = pattern.flatMap((looked, i) => (looked ? [i] : []));
  const skips = looksAt.slice(1).map((at, i) => at - looksAt[i] - 1);
  assert.deepEqual(skips.slice(0, 7), [1, 2, 4, 8, 16, 32, 64]);
  assert.ok(skips.length > 7 && skips.slice(7).every((skip) => skip === 64), `then 64 for good: ${skips}`);
});

test("one look that finds a request makes it look after every reply again", () => {
  const policy = new LookingPolicy();
  looksAmong(policy, 50, false);
  while (!policy.worthIt());
  policy.found(true);
  assert.equal(looksAmong(policy, 10, true), 10);
});

test("one serving thread looks at a time", () => {
  const control = createLoopControl();
  assert.equal(tryStartSpin(control), true);
  assert.equal(tryStartSpin(control), false, "a second thread sleeps at once");
  endSpin(control);
  assert.equal(tryStartSpin(control), true, "the slot is free again after the look");
});

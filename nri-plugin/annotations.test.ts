import assert from "node:assert/strict";
import { test } from "node:test";
import { annotationKeysFor, decideViews, isDefaultPolicy } from "./annotations.ts";

const key = "procview.noderesource.dev";

test("the most specific annotation wins: container, then pod, then the bare key", () => {
  const annotations = { [key]: "disabled", [`${key}/pod`]: "enabled", [`${key}/container.app`]: "disabled" };
  assert.deepEqual(decideViews(annotations, "app", "all"), { enabled: false, decidedBy: `${key}/container.app` });
  assert.deepEqual(decideViews(annotations, "sidecar", "all"), { enabled: true, decidedBy: `${key}/pod` });
  assert.deepEqual(decideViews({ [key]: "disabled" }, "app", "all"), { enabled: false, decidedBy: key });
});

test("without annotations the default policy decides", () => {
  assert.deepEqual(decideViews(undefined, "app", "all"), { enabled: true, decidedBy: "default" });
  assert.deepEqual(decideViews({ other: "x" }, "app", "opted-in"), { enabled: false, decidedBy: "default" });
});

test("values are read case-insensitively with spaces trimmed", () => {
  assert.equal(decideViews({ [key]: " Enabled " }, "app", "opted-in").enabled, true);
});

test("an unknown value yields the default and reports the annotation", () => {
  assert.deepEqual(decideViews({ [`${key}/pod`]: "yes", [key]: "enabled" }, "app", "opted-in"), {
    enabled: false,
    decidedBy: "default",
    invalid: { annotation: `${key}/pod`, value: "yes" },
  });
});

test("keys and policy names", () => {
  assert.deepEqual(annotationKeysFor("c"), [`${key}/container.c`, `${key}/pod`, key]);
  assert.equal(isDefaultPolicy("opted-in"), true);
  assert.equal(isDefaultPolicy("none"), false);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { generatedTypesUrl, generateTypes } from "./generate-types.ts";

test("nri/api-types.ts is what the protos generate now (after a .proto edit, run node proto/generate-types.ts)", () => {
  assert.equal(readFileSync(generatedTypesUrl, "utf8"), generateTypes());
});

test("the generated shapes are the codec's: snake_case names, 64-bit integers as strings, enums as numbers", () => {
  const types = generateTypes();
  assert.match(types, /export interface ConfigureRequest \{[^}]*\n  registration_timeout\?: string;\n/);
  assert.match(types, /export interface Container \{[^}]*\n  pod_sandbox_id\?: string;\n[^}]*\n  state\?: number;\n/);
  assert.match(types, /export interface PodSandbox \{[^}]*\n  annotations\?: Record<string, string>;\n/);
  assert.match(types, /export interface TtrpcRequest \{[^}]*\n  payload\?: Uint8Array;\n[^}]*\n  metadata\?: TtrpcKeyValue\[\];\n/);
});

/**
 * Our hand-written protos against the upstream definitions Debian ships: every field
 * we define must have upstream's number, type and label, or the runtime and the plugin
 * would silently misread each other. Needs the network once (then .cache/debian).
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import protobuf from "protobufjs";
import { debianPackage } from "../integration/debian-packages.ts";

const gocode = "usr/share/gocode/src/github.com/containerd";

/**
 * Fields added after NRI 0.6.1 (Debian's version) that we use with newer runtimes.
 * Their upstream numbers come from containerd/nri's main branch; if Debian's copy has
 * them, they are compared like every other field.
 */
const newerThanDebian = new Set([
  "nri.pkg.api.v1alpha1.ConfigureRequest.registration_timeout",
  "nri.pkg.api.v1alpha1.ConfigureRequest.request_timeout",
  "nri.pkg.api.v1alpha1.SynchronizeRequest.more",
  "nri.pkg.api.v1alpha1.SynchronizeResponse.more",
]);

/** One root holding the definitions of all `texts`, references resolved. */
function parsed(...texts: string[]): protobuf.Root {
  const root = new protobuf.Root();
  for (const text of texts) protobuf.parse(text, root, { keepCase: true });
  root.resolveAll();
  return root;
}

function ours(file: string): protobuf.Root {
  return parsed(readFileSync(new URL(file, import.meta.url), "utf8"));
}

function typeName(field: protobuf.Field): string {
  // Resolved message/enum types compare by full name, scalars by keyword.
  const resolved = field.resolvedType;
  return resolved ? resolved.fullName.replace(/^\./, "") : field.type;
}

function describeField(field: protobuf.Field): string {
  const key = field instanceof protobuf.MapField ? `map<${field.keyType}> ` : "";
  return `${field.repeated ? "repeated " : ""}${key}${typeName(field)} = ${field.id}`;
}

function allOf(namespace: protobuf.NamespaceBase): protobuf.ReflectionObject[] {
  return namespace.nestedArray.flatMap((nested) =>
    nested instanceof protobuf.Namespace || nested instanceof protobuf.Type
      ? [nested, ...allOf(nested as protobuf.NamespaceBase)]
      : [nested],
  );
}

/** Every difference of `mine` from `upstream`, as readable lines; [] when compatible. */
function incompatibilities(mine: protobuf.Root, upstream: protobuf.Root, allowedAbsent: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const object of allOf(mine)) {
    const name = object.fullName.replace(/^\./, "");
    const theirs = upstream.lookup(name);
    if (object instanceof protobuf.Type) {
      if (!(theirs instanceof protobuf.Type)) {
        problems.push(`message ${name} is not upstream`);
        continue;
      }
      for (const field of object.fieldsArray) {
        const other = theirs.fields[field.name];
        if (!other) {
          if (!allowedAbsent.has(`${name}.${field.name}`)) problems.push(`${name}.${field.name} is not upstream`);
          continue;
        }
        if (describeField(field) !== describeField(other)) {
          problems.push(`${name}.${field.name}: ours ${describeField(field)}, upstream ${describeField(other)}`);
        }
      }
    } else if (object instanceof protobuf.Enum) {
      if (!(theirs instanceof protobuf.Enum)) {
        problems.push(`enum ${name} is not upstream`);
        continue;
      }
      for (const [key, value] of Object.entries(object.values)) {
        if (theirs.values[key] !== value) problems.push(`${name}.${key}: ours ${value}, upstream ${theirs.values[key]}`);
      }
    } else if (object instanceof protobuf.Service) {
      if (!(theirs instanceof protobuf.Service)) {
        problems.push(`service ${name} is not upstream`);
        continue;
      }
      for (const method of object.methodsArray) {
        const other = theirs.methods[method.name];
        const signature = (m: protobuf.Method) => `${m.requestType} -> ${m.responseType}`;
        if (!other) problems.push(`rpc ${name}.${method.name} is not upstream`);
        else if (signature(method) !== signature(other)) {
          problems.push(`rpc ${name}.${method.name}: ours ${signature(method)}, upstream ${signature(other)}`);
        }
      }
    }
  }
  return problems;
}

test("the comparison reports a wrong field number, type, label, enum value and a missing field", () => {
  const upstream = parsed(
    `syntax = "proto3"; package p; enum E { A = 0; B = 1; }
     message M { string a = 1; repeated string b = 2; int64 c = 3; string d = 4; map<string, string> m = 5; }`,
  );
  const mine = parsed(
    `syntax = "proto3"; package p; enum E { A = 0; B = 2; }
     message M { string a = 9; string b = 2; int32 c = 3; string d = 4; string e = 6; map<string, int32> m = 5; }`,
  );
  assert.deepEqual(incompatibilities(mine, upstream, new Set()), [
    "p.E.B: ours 2, upstream 1",
    "p.M.a: ours string = 9, upstream string = 1",
    "p.M.b: ours string = 2, upstream repeated string = 2",
    "p.M.c: ours int32 = 3, upstream int64 = 3",
    "p.M.e is not upstream",
    "p.M.m: ours map<string> int32 = 5, upstream map<string> string = 5",
  ]);
  assert.deepEqual(incompatibilities(mine, upstream, new Set(["p.M.e"])).includes("p.M.e is not upstream"), false);
});

test("proto/nri.proto matches Debian trixie's containerd/nri api.proto", async () => {
  const dir = await debianPackage("golang-github-containerd-nri-dev", "trixie");
  const upstream = parsed(readFileSync(join(dir, gocode, "nri/pkg/api/api.proto"), "utf8"));
  const mine = ours("nri.proto");
  assert.deepEqual(incompatibilities(mine, upstream, newerThanDebian), []);
  // Guards against a vacuous pass: the messages the plugin relies on were compared.
  for (const name of ["CreateContainerRequest", "ContainerAdjustment", "Mount", "LinuxContainer", "LinuxMemory", "PodSandbox"]) {
    assert.ok(upstream.lookupType(`nri.pkg.api.v1alpha1.${name}`).fieldsArray.length > 0, name);
  }
});

test("the fields newer than Debian's NRI have containerd/nri main's numbers", () => {
  const mine = ours("nri.proto");
  const field = (message: string, name: string) => describeField(mine.lookupType(`nri.pkg.api.v1alpha1.${message}`).fields[name]);
  assert.equal(field("ConfigureRequest", "registration_timeout"), "int64 = 4");
  assert.equal(field("ConfigureRequest", "request_timeout"), "int64 = 5");
  assert.equal(field("SynchronizeRequest", "more"), "bool = 3");
  assert.equal(field("SynchronizeResponse", "more"), "bool = 2");
});

test("proto/ttrpc.proto matches Debian trixie's containerd/ttrpc request.proto", async () => {
  const dir = await debianPackage("golang-github-containerd-ttrpc-dev", "trixie");
  const source = (file: string) => readFileSync(join(dir, gocode, "ttrpc", file), "utf8");
  // request.proto imports proto/status.proto: parse that first, then request.proto without the import.
  const upstream = parsed(source("proto/status.proto"), source("request.proto").replace(/^import .*$/m, ""));
  const mine = ours("ttrpc.proto");
  const problems = incompatibilities(mine, upstream, new Set());
  // Debian's status.proto is a stub holding only `code`, in no package; ours carries
  // google.rpc.Status's message = 2 and details = 3 under the ttrpc package. Those are
  // the only differences allowed.
  assert.deepEqual(problems, [
    "message ttrpc.Status is not upstream",
    "message ttrpc.Any is not upstream",
    "ttrpc.Response.status: ours ttrpc.Status = 1, upstream Status = 1",
  ]);
  assert.equal(describeField(mine.lookupType("ttrpc.Response").fields.status), "ttrpc.Status = 1");
  const upstreamStatus = upstream.lookupType("Status");
  assert.equal(describeField(upstreamStatus.fields.code), describeField(mine.lookupType("ttrpc.Status").fields.code));
  assert.equal(describeField(mine.lookupType("ttrpc.Status").fields.message), "string = 2");
});

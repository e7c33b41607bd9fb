import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { debianPackage } from "../integration/debian-packages.ts";

// Our hand-written CRI subset must put every field at upstream's number and type, or
// containerd would read our requests as something else. Upstream is Debian's packaged
// k8s.io/cri-api (trixie), fetched by the harness.

const oursPath = fileURLToPath(new URL("./cri.proto", import.meta.url));

async function upstreamCriProto(): Promise<string> {
  const dir = await debianPackage("golang-github-kubernetes-cri-api-dev", "trixie");
  return readFile(join(dir, "usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto"), "utf8");
}

/** gogoproto only steers Go code generation; its import cannot be resolved here. */
function stripGogoproto(text: string): string {
  return text
    .replace(/^\s*import\s+"github\.com\/gogo\/protobuf\/gogoproto\/gogo\.proto";\s*$/gm, "")
    .replace(/^\s*option\s+\(gogoproto\.[^)]*\)\s*=[^;]*;\s*$/gm, "")
    .replace(/\s*\[\s*\(gogoproto\.[^\]]*\]/g, "");
}

function parse(text: string): protobuf.Root {
  const root = protobuf.parse(text, { keepCase: true }).root;
  root.resolveAll();
  return root;
}

function typeName(field: protobuf.Field): string {
  return field.resolvedType ? field.resolvedType.fullName : field.type;
}

/** Every difference between our declarations and upstream's, as readable lines. */
function incompatibilities(ours: protobuf.Root, upstream: protobuf.Root): string[] {
  const problems: string[] = [];
  const visit = (namespace: protobuf.NamespaceBase) => {
    for (const object of namespace.nestedArray) {
      const theirs = upstream.lookup(object.fullName);
      if (theirs === null) {
        problems.push(`${object.fullName}: not in upstream`);
      } else if (object instanceof protobuf.Type) {
        if (!(theirs instanceof protobuf.Type)) problems.push(`${object.fullName}: upstream is not a message`);
        else compareMessage(object, theirs, problems);
      } else if (object instanceof protobuf.Enum) {
        if (!(theirs instanceof protobuf.Enum)) problems.push(`${object.fullName}: upstream is not an enum`);
        else compareEnum(object, theirs, problems);
      } else if (object instanceof protobuf.Service) {
        if (!(theirs instanceof protobuf.Service)) problems.push(`${object.fullName}: upstream is not a service`);
        else compareService(object, theirs, problems);
      }
      if (object instanceof protobuf.Namespace || object instanceof protobuf.Type) visit(object);
    }
  };
  visit(ours);
  return problems;
}

function compareMessage(ours: protobuf.Type, theirs: protobuf.Type, problems: string[]): void {
  for (const field of ours.fieldsArray) {
    const where = `${ours.fullName}.${field.name}`;
    const match = theirs.fields[field.name];
    if (match === undefined) {
      problems.push(`${where}: no such field upstream`);
      continue;
    }
    if (match.id !== field.id) problems.push(`${where}: number ${field.id}, upstream ${match.id}`);
    if (typeName(match) !== typeName(field)) problems.push(`${where}: type ${typeName(field)}, upstream ${typeName(match)}`);
    if (match.repeated !== field.repeated) problems.push(`${where}: repeated ${field.repeated}, upstream ${match.repeated}`);
    if (match.map !== field.map) problems.push(`${where}: map ${field.map}, upstream ${match.map}`);
    if (field instanceof protobuf.MapField && match instanceof protobuf.MapField && field.keyType !== match.keyType) {
      problems.push(`${where}: map key ${field.keyType}, upstream ${match.keyType}`);
    }
  }
}

function compareEnum(ours: protobuf.Enum, theirs: protobuf.Enum, problems: string[]): void {
  for (const [name, value] of Object.entries(ours.values)) {
    if (theirs.values[name] !== value) problems.push(`${ours.fullName}.${name}: ${value}, upstream ${theirs.values[name]}`);
  }
}

function compareService(ours: protobuf.Service, theirs: protobuf.Service, problems: string[]): void {
  for (const method of ours.methodsArray) {
    const where = `${ours.fullName}.${method.name}`;
    const match = theirs.methods[method.name];
    if (match === undefined) {
      problems.push(`${where}: no such method upstream`);
      continue;
    }
    const signature = (m: protobuf.Method) =>
      `${m.requestStream ? "stream " : ""}${m.resolvedRequestType?.fullName} -> ${m.responseStream ? "stream " : ""}${m.resolvedResponseType?.fullName}`;
    if (signature(match) !== signature(method)) problems.push(`${where}: ${signature(method)}, upstream ${signature(match)}`);
  }
}

test("every service, message, field and enum value of proto/cri.proto matches upstream CRI", async () => {
  const upstream = parse(stripGogoproto(await upstreamCriProto()));
  const ours = parse(await readFile(oursPath, "utf8"));
  assert.deepEqual(incompatibilities(ours, upstream), []);
  // The subset is what the harness drives; make sure the comparison covered it.
  const runtime = ours.lookupService("runtime.v1.RuntimeService");
  assert.ok(runtime.methodsArray.length >= 13);
  assert.equal(ours.lookupType("runtime.v1.LinuxContainerResources").fields.memory_limit_in_bytes.id, 4);
});

test("the comparison reports a renumbered field, a wrong type, an unknown field and a wrong enum value", async () => {
  const upstream = parse(stripGogoproto(await upstreamCriProto()));
  const broken = (await readFile(oursPath, "utf8"))
    .replace("int64 memory_limit_in_bytes = 4;", "int64 memory_limit_in_bytes = 8;")
    .replace("string cpuset_cpus = 6;", "int64 cpuset_cpus = 6;")
    .replace("string container_id = 1;\n  repeated string cmd = 2;", "string container_id = 1;\n  repeated string cmd = 2;\n  string shell = 99;")
    .replace("CONTAINER_EXITED = 2;", "CONTAINER_EXITED = 4;");
  assert.deepEqual(incompatibilities(parse(broken), upstream).sort(), [
    ".runtime.v1.ContainerState.CONTAINER_EXITED: 4, upstream 2",
    ".runtime.v1.ExecSyncRequest.shell: no such field upstream",
    ".runtime.v1.LinuxContainerResources.cpuset_cpus: type int64, upstream string",
    ".runtime.v1.LinuxContainerResources.memory_limit_in_bytes: number 8, upstream 4",
  ]);
});

test("gogoproto imports and options are stripped, other options kept", () => {
  const text = [
    'import "github.com/gogo/protobuf/gogoproto/gogo.proto";',
    "option (gogoproto.marshaler_all) = true;",
    "message A {",
    "  string b = 1 [(gogoproto.customname) = \"B\", (gogoproto.nullable) = false];",
    "  string c = 2 [deprecated=true];",
    "}",
  ].join("\n");
  assert.equal(stripGogoproto(text).trim(), "message A {\n  string b = 1;\n  string c = 2 [deprecated=true];\n}");
});

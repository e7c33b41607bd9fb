import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerRegistry, isValidContainerId, makeRecordsPrivate } from "./registry.ts";

function withRegistry(body: (registry: ContainerRegistry, stateDir: string) => void) {
  const stateDir = mkdtempSync(join(tmpdir(), "procview-registry-"));
  try {
    body(new ContainerRegistry(stateDir), stateDir);
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

test("container ids: runtime ids pass, path tricks do not", () => {
  assert.ok(isValidContainerId("0123456789abcdef".repeat(4)));
  assert.ok(isValidContainerId("my_container-1.web"));
  for (const bad of ["", ".", "..", "a/b", "../x", "a..b", ".hidden", "x".repeat(129), "a\0b"]) {
    assert.equal(isValidContainerId(bad), false, bad);
  }
});

test("put, get, ids, remove round trip and leave no temp files", () => {
  withRegistry((registry) => {
    const record = { id: "abc", cgroupPath: "/k8s.io/abc", name: "c", pod: { name: "p", namespace: "ns" }, recordedAt: 5 };
    registry.put(record);
    assert.deepEqual(registry.get("abc"), { ...record, pod: { name: "p", namespace: "ns" } });
    assert.deepEqual(registry.ids(), ["abc"]);
    assert.deepEqual(readdirSync(registry.dir), ["abc.json"]);
    registry.remove("abc");
    assert.equal(registry.get("abc"), undefined);
    assert.deepEqual(registry.ids(), []);
  });
});

test("corrupt or mismatched records read as absent, invalid ids are refused", () => {
  withRegistry((registry) => {
    registry.put({ id: "good", cgroupPath: "/a", recordedAt: 1 });
    writeFileSync(join(registry.dir, "torn.json"), "{\"id\":\"torn\",");
    writeFileSync(join(registry.dir, "other.json"), JSON.stringify({ id: "good", cgroupPath: "/a" }));
    writeFileSync(join(registry.dir, "escape.json"), JSON.stringify({ id: "escape", cgroupPath: "/a/../../etc" }));
    assert.equal(registry.get("torn"), undefined);
    assert.equal(registry.get("other"), undefined);
    assert.equal(registry.get("escape"), undefined);
    assert.equal(registry.get("../good"), undefined);
    assert.throws(() => registry.put({ id: "../x", cgroupPath: "/a", recordedAt: 1 }), /invalid container id/);
  });
});

test("an unwritable state dir is a clear error", () => {
  withRegistry((_registry, stateDir) => {
    writeFileSync(join(stateDir, "file"), "");
    const blocked = new ContainerRegistry(join(stateDir, "file"));
    assert.throws(() => blocked.put({ id: "a", cgroupPath: "/a", recordedAt: 1 }), /ENOTDIR|EEXIST/);
    assert.deepEqual(blocked.ids(), []);
  });
});

test("the per-container CPU option round-trips, and is absent when unset or not a boolean", () => {
  withRegistry((registry) => {
    registry.put({ id: "quota", cgroupPath: "/a", recordedAt: 1, cpuLimitByQuota: false });
    assert.equal(registry.get("quota")?.cpuLimitByQuota, false);
    registry.put({ id: "plain", cgroupPath: "/a", recordedAt: 1 });
    assert.equal("cpuLimitByQuota" in registry.get("plain")!, false);
    writeFileSync(join(registry.dir, "odd.json"), JSON.stringify({ id: "odd", cgroupPath: "/a", recordedAt: 1, cpuLimitByQuota: "yes" }));
    assert.equal("cpuLimitByQuota" in registry.get("odd")!, false);
  });
});

test("records are private: folder 0700 (also one an older version left 0755), files 0600; a new state dir is 0700", () => {
  withRegistry((registry, stateDir) => {
    mkdirSync(registry.dir, { mode: 0o755 });
    chmodSync(registry.dir, 0o755);
    makeRecordsPrivate(stateDir);
    registry.put({ id: "abc", cgroupPath: "/k8s.io/abc", recordedAt: 1 });
    const mode = (path: string) => statSync(path).mode & 0o777;
    assert.equal(mode(registry.dir), 0o700);
    assert.equal(mode(join(registry.dir, "abc.json")), 0o600);
    const fresh = join(stateDir, "fresh");
    makeRecordsPrivate(fresh);
    assert.equal(mode(fresh), 0o700);
    assert.equal(mode(join(fresh, "containers")), 0o700);
  });
});

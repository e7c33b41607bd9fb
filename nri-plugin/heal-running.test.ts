import { test } from "node:test";
import assert from "node:assert/strict";
import { missingCapabilities } from "./heal-running.ts";

test("capabilities needed to enter a container's mount namespace, read from CapEff", () => {
  assert.deepEqual(missingCapabilities("Name:\tnode\nCapEff:\t000001fffeffffff\n"), []);
  assert.deepEqual(missingCapabilities("CapEff:\t0000000000000000\n"), ["CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_ADMIN"]);
  assert.deepEqual(missingCapabilities("CapEff:\t00000000a80425fb\n"), ["CAP_SYS_PTRACE", "CAP_SYS_ADMIN"], "a container runtime's default set");
  assert.deepEqual(missingCapabilities("no such line\n"), ["CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_ADMIN"]);
});

/**
 * `npm run test:stack`'s global set-up (--test-global-setup): what only the machine can
 * give, checked once before any stack test, so a run without it stops at once with what to
 * do instead of failing every test on its own. Everything else the stack tests use they
 * provision themselves (integration/debian-tools.ts).
 */

import { existsSync } from "node:fs";

export function globalSetup(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root (they mount FUSE filesystems, make cgroups, run containerd, dockerd and lxcfs): run them as root");
  if (!existsSync("/dev/fuse")) missing.push("/dev/fuse: load the fuse module (modprobe fuse), or pass the device into the container");
  if (missing.length > 0) {
    throw new Error(`the stack tests (*.stack.test.ts) need:\n- ${missing.join("\n- ")}\n(npm run test:unit needs neither)`);
  }
}

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readlinkSync } from "node:fs";
import { readOnlyFileMappings, residentKiB } from "./startup-pages.ts";

/** /proc/<pid>/smaps, each mapping with the fields read and one other. */
const smaps = [
  ["00400000-00746000 r--p 00000000 fe:00 5325008                            /usr/bin/node", 0],
  ["0074a000-03044000 r-xp 0034a000 fe:00 5325008                            /usr/bin/node", 0],
  ["06b52000-06b56000 r--p 06751000 fe:00 5325008                            /usr/bin/node", 16],
  ["06b56000-06b7d000 rw-p 06755000 fe:00 5325008                            /usr/bin/node", 156],
  ["3bd0b000-3c1ef000 rw-p 00000000 00:00 0                                  [heap]", 4884],
  ["7f8344000000-7f8363dc0000 rwxp 00000000 00:00 0 ", 908],
  ["7f8382c2e000-7f8382d3e000 r-xp 00000000 fe:00 77                         /opt/app/koffi.node (deleted)", 0],
  ["7f8382e00000-7f8382e15000 r--s 00000000 00:0f 1050                       anon_inode:[io_uring]", 0],
  ["7ffd1f5e2000-7ffd1f5e6000 r--p 00000000 00:00 0                          [vvar]", 0],
  ["7ffd1f5e6000-7ffd1f5e8000 r-xp 00000000 00:00 0                          [vdso]", 0],
  ["ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]", 0],
]
  .map(([header, anonymous]) => `${header}\nSize:               1000 kB\nRss:                 100 kB\nAnonymous:      ${String(anonymous).padStart(8)} kB\nVmFlags: rd mr mw me sd\n`)
  .join("");

test("the read-only mappings of files: the executable's code and constants, its RELRO segment with the pages it changed, a replaced library", () => {
  assert.deepEqual(readOnlyFileMappings(smaps), [
    { start: 0x400000, end: 0x746000, path: "/usr/bin/node", anonymousKiB: 0 },
    { start: 0x74a000, end: 0x3044000, path: "/usr/bin/node", anonymousKiB: 0 },
    { start: 0x6b52000, end: 0x6b56000, path: "/usr/bin/node", anonymousKiB: 16 },
    { start: 0x7f8382c2e000, end: 0x7f8382d3e000, path: "/opt/app/koffi.node (deleted)", anonymousKiB: 0 },
  ]);
});

test("writable, anonymous and the kernel's own mappings are left out", () => {
  const paths = readOnlyFileMappings(smaps).map((mapping) => mapping.path);
  for (const left of ["[heap]", "", "[vdso]", "[vvar]", "[vsyscall]", "anon_inode:[io_uring]"]) assert.equal(paths.includes(left), false, left);
  assert.deepEqual(readOnlyFileMappings(""), []);
});

test("this process's own smaps: its executable is among the read-only file mappings", () => {
  const mappings = readOnlyFileMappings(readFileSync("/proc/self/smaps", "utf8"));
  assert.ok(mappings.some((mapping) => mapping.path === readlinkSync("/proc/self/exe")));
  for (const mapping of mappings) assert.ok(mapping.end > mapping.start && Number.isInteger(mapping.anonymousKiB), JSON.stringify(mapping));
});

test("RSS and its file-backed part from /proc/<pid>/status", () => {
  const status = "Name:\tnode\nVmHWM:\t   87788 kB\nVmRSS:\t   86964 kB\nRssAnon:\t   38000 kB\nRssFile:\t   48382 kB\nRssShmem:\t     582 kB\n";
  assert.deepEqual(residentKiB(status), { rss: 86964, file: 48382 });
  assert.deepEqual(residentKiB("Name:\tkthreadd\n"), { rss: Number.NaN, file: Number.NaN }, "a kernel thread has none");
});

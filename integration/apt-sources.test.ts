import { test } from "node:test";
import assert from "node:assert/strict";
import { findDebianMirror } from "./apt-sources.ts";

const deb822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`;

test("deb822: picks the entry carrying the plain codename, with its keyring", () => {
  const mirror = findDebianMirror([{ path: "/etc/apt/sources.list.d/debian.sources", text: deb822 }], "bookworm");
  assert.deepEqual(mirror, {
    uri: "http://deb.debian.org/debian",
    signedBy: "/usr/share/keyrings/debian-archive-keyring.gpg",
  });
});

test("security-only and third-party sources are not taken for the mirror", () => {
  const files = [
    { path: "/etc/apt/sources.list", text: "deb http://security.debian.org/debian-security bookworm-security main\n" },
    { path: "/etc/apt/sources.list.d/node.sources", text: "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n" },
    { path: "/etc/apt/sources.list.d/mirror.list", text: "# deb http://old.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://ftp.example.org/debian/ bookworm main contrib\n" },
  ];
  assert.deepEqual(findDebianMirror(files, "bookworm"), { uri: "http://ftp.example.org/debian/", signedBy: "/k.gpg" });
});

test("disabled deb822 stanzas and deb-src lines are skipped", () => {
  const files = [
    { path: "/a.sources", text: "Enabled: no\nTypes: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\n" },
    { path: "/b.list", text: "deb-src http://src.example/debian bookworm main\ndeb http://bin.example/debian bookworm main\n" },
  ];
  assert.deepEqual(findDebianMirror(files, "bookworm"), { uri: "http://bin.example/debian" });
});

test("an inline armored key is not passed on as a keyring path", () => {
  const text = "Types: deb\nURIs: http://x.example/debian\nSuites: bookworm\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n";
  assert.deepEqual(findDebianMirror([{ path: "/x.sources", text }], "bookworm"), { uri: "http://x.example/debian" });
});

test("no matching source is a clear error naming the files read", () => {
  assert.throws(
    () => findDebianMirror([{ path: "/etc/apt/sources.list", text: "deb http://x/debian bullseye main\n" }], "bookworm"),
    /no apt source for Debian suite "bookworm" found in: \/etc\/apt\/sources.list/,
  );
});

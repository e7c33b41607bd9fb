// deploy/Containerfile builds from Debian and npm only, from files that exist, with the
// Node the project pins. (The image itself cannot be built here: no registry to pull from.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const moduleUrl = import.meta.url;
const repoRoot = fileURLToPath(new URL("..", moduleUrl));

/** Instructions with their continuation lines joined, comments dropped. */
function instructions(text: string): string[] {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"));
}

const containerfile = instructions(readFileSync(new URL("./Containerfile", moduleUrl), "utf8"));
const packageJson = JSON.parse(readFileSync(new URL("../package.json", moduleUrl), "utf8")) as {
  devDependencies: Record<string, string>;
};

test("every stage starts from Debian", () => {
  const bases = containerfile.filter((line) => line.startsWith("FROM ")).map((line) => line.split(/\s+/)[1]);
  assert.ok(bases.length >= 1);
  for (const base of bases) assert.match(base, /^debian:trixie-slim$/);
});

test("packages come from Debian's apt and npm only; runtime dependencies without dev ones", () => {
  for (const line of containerfile.filter((l) => l.startsWith("RUN "))) {
    assert.doesNotMatch(line, /\b(curl|wget|git clone|ADD)\b/, `fetches from outside apt and npm: ${line}`);
  }
  assert.ok(containerfile.some((line) => /npm ci --omit=dev\b/.test(line)));
  assert.ok(!containerfile.some((line) => line.startsWith("ADD ")));
});

test("the image's Node is the version the project pins, which can run TypeScript", () => {
  const install = containerfile.find((line) => /npm install .*\bnode@/.test(line));
  assert.ok(install, "Node comes from npm's node package");
  const version = /\bnode@(\d+\.\d+\.\d+)/.exec(install)?.[1];
  assert.equal(version, packageJson.devDependencies.node);
  const [major, minor] = (version ?? "0.0").split(".").map(Number);
  assert.ok(major > 22 || (major === 22 && minor >= 18), "type stripping needs Node >= 22.18");
});

test("every file the build copies from the checkout exists", () => {
  const copies = containerfile.filter((line) => line.startsWith("COPY ") && !line.startsWith("COPY --from="));
  assert.ok(copies.length > 0);
  for (const line of copies) {
    const sources = line.split(/\s+/).slice(1, -1);
    for (const source of sources) assert.ok(existsSync(`${repoRoot}/${source}`), `COPY ${source}: no such file in the checkout`);
  }
});

test("the program lands outside node_modules, where Node would refuse to strip its types", () => {
  const entrypoint = containerfile.find((line) => line.startsWith("ENTRYPOINT "));
  assert.ok(entrypoint);
  const [node, script] = JSON.parse(entrypoint.slice("ENTRYPOINT ".length)) as string[];
  assert.equal(node, "/usr/local/bin/node");
  assert.ok(script.endsWith("/bin/procview.js") && !script.includes("node_modules"));
});

/**
 * Runs the FUSE server on the fixture tree as a separate process, for tests that need
 * another runtime (deno run -A) or another process. Usage:
 *   serve-fixture.ts <mountpoint> <stateDir> <dynamicDir> [workers]
 * Prints one JSON line once serving; stops and exits when its stdin closes. A line
 * "exit" on stdin calls process.exit(3) without stop(), as a crash would.
 */

import { startFuseServer } from "../../daemon.ts";

const [mountpoint, stateDir, dynamicDir, workers] = process.argv.slice(2);
const server = await startFuseServer({
  mountpoint,
  stateDir,
  treeModule: new URL("./fixture-tree.ts", import.meta.url).href,
  treeOptions: { dynamicDir },
  workers: workers ? Number(workers) : undefined,
});
process.stdout.write(JSON.stringify({ serving: server.mountpoint, pid: process.pid }) + "\n");
process.stdin.setEncoding("utf8").on("data", (chunk: string) => {
  if (chunk.split("\n").includes("exit")) process.exit(3);
});
process.stdin.on("end", () => {
  void server.stop().then(() => process.exit(0));
});
process.stdin.resume();

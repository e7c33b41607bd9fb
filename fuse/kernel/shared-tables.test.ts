import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { HandleStore, createHandleStoreMemory } from "./handle-store.ts";
import { NodeTable, createNodeTableMemory } from "./node-table.ts";

const churnWorker = new URL("./testdata/table-churn-worker.ts", import.meta.url);

test("threads using the shared tables at once leave them consistent (the lock holds)", async () => {
  const nodes = createNodeTableMemory(256);
  const handles = createHandleStoreMemory({ handles: 16, chunks: 64, chunkSize: 16 });
  const problems = await Promise.all(
    Array.from({ length: 4 }, (_, worker) => {
      const thread = new Worker(churnWorker, { workerData: { nodes, handles, rounds: 3000, worker } });
      return new Promise<string[]>((resolve, reject) => {
        thread.once("message", resolve);
        thread.once("error", reject);
      });
    }),
  );
  assert.deepEqual(problems.flat(), []);
  assert.equal(new NodeTable(nodes).liveCount, 1, "every id given back");
  assert.equal(new HandleStore(handles).openCount, 0, "every handle released");
});

/**
 * Hammers the shared node table and handle store from a worker thread, for the test
 * that several threads using them at once keep them consistent. Reports mismatches.
 */

import { parentPort, workerData } from "node:worker_threads";
import { HandleStore } from "../handle-store.ts";
import { NodeTable } from "../node-table.ts";

const { nodes, handles, rounds, worker } = workerData as { nodes: SharedArrayBuffer; handles: SharedArrayBuffer; rounds: number; worker: number };
const table = new NodeTable(nodes);
const store = new HandleStore(handles);
const problems: string[] = [];
for (let round = 0; round < rounds; round++) {
  // Names shared by all workers (same ids expected) and names of this worker only.
  const shared = table.lookup(1, `shared-${round % 7}`);
  const own = table.lookup(shared.nodeId, `worker-${worker}-${round}`);
  const path = table.path(own.nodeId)?.names.join("/");
  if (path !== `shared-${round % 7}/worker-${worker}-${round}`) problems.push(`round ${round}: path ${path}`);
  const content = new TextEncoder().encode(`worker ${worker} round ${round} `.repeat(round % 5));
  const handle = store.open(content, { reader: `worker ${worker}`, nodeId: own.nodeId, pid: worker });
  const back = store.read(handle, 0, content.byteLength + 10);
  if (back === undefined || new TextDecoder().decode(back) !== new TextDecoder().decode(content)) problems.push(`round ${round}: content`);
  store.release(handle);
  table.forget(own.nodeId, 1);
  table.forget(shared.nodeId, 1);
}
parentPort!.postMessage(problems);

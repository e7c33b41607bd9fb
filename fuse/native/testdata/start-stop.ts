// Starts the fuse-native server on argv[2] (mountpoint) and argv[3] (state dir), stops it,
// and then only returns: the process must end by itself, with nothing left holding its event loop.
import { createLogger } from "../../../core/log.ts";
import { startNativeFuseServer } from "../server.ts";

const [mountpoint, stateDir] = process.argv.slice(2);
const server = await startNativeFuseServer({
  mountpoint,
  stateDir,
  treeModule: new URL("../../../views/procview-tree.ts", import.meta.url).href,
  treeOptions: { stateDir },
  logger: createLogger({ write: () => {} }),
});
process.stdout.write("serving\n");
await server.stop();
process.stdout.write("stopped\n");

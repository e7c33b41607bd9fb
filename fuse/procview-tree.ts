/**
 * The tree procview's FUSE server serves: `containers/<id>/<view>` for each container
 * the NRI plugin recorded (core/registry.ts), each view rendered from that container's
 * cgroup at open. Nothing else of the host is reachable through it.
 */

import { readFileSync } from "node:fs";
import { parseCgroupLayout, type CgroupLayout } from "../core/cgroup-path.ts";
import { createLogger, isLogLevel, type Logger } from "../core/log.ts";
import { ContainerRegistry } from "../core/registry.ts";
import { errno, FsError, type DirNode, type FileNode, type FsNode } from "./node.ts";
import { viewRenderers, type ViewRenderer, type ViewSources } from "./views/catalog.ts";

export interface ProcviewTreeOptions {
  /** The state directory shared with the NRI plugin (holds containers/<id>.json). */
  stateDir: string;
  /** The cgroup mounts; read from /proc/self/mountinfo when absent. */
  cgroupLayout?: CgroupLayout;
  /** The host's procfs; "/proc" when absent. */
  procDir?: string;
  logLevel?: string;
}

/** The server's entry point (fuse/node.ts TreeModule); options arrive structured-cloned from the main thread. */
export function createTree(options: ProcviewTreeOptions): DirNode {
  const checked = checkOptions(options);
  const logger = createLogger({
    level: checked.logLevel !== undefined && isLogLevel(checked.logLevel) ? checked.logLevel : "info",
    fields: { component: "procview-tree" },
  });
  const sources: ViewSources = {
    layout: checked.cgroupLayout ?? parseCgroupLayout(readFileSync("/proc/self/mountinfo", "utf8")),
    procDir: checked.procDir ?? "/proc",
  };
  return createProcviewTree(new ContainerRegistry(checked.stateDir), sources, logger);
}

export function createProcviewTree(registry: ContainerRegistry, sources: ViewSources, logger: Logger): DirNode {
  const containers: DirNode = {
    kind: "dir",
    lookup(id) {
      const record = registry.get(id);
      if (record === undefined) return undefined;
      const render = (renderer: ViewRenderer, path: string): string | Uint8Array =>
        renderForContainer(renderer, path, id, record.cgroupPath, sources, logger);
      return viewDirectory(render);
    },
    list: () => registry.ids(),
  };
  return staticDirectory(new Map([["containers", containers]]));
}

function renderForContainer(
  renderer: ViewRenderer,
  viewPath: string,
  id: string,
  cgroupPath: string,
  sources: ViewSources,
  logger: Logger,
): string {
  try {
    return renderer(cgroupPath, sources);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      logger.warn("container cgroup is gone", { container: id, cgroupPath, view: viewPath, error });
      throw new FsError(errno.ENOENT, `cgroup of container ${id} is gone`);
    }
    logger.error("view failed", { container: id, cgroupPath, view: viewPath, error });
    throw new FsError(errno.EIO, `cannot render ${viewPath} for container ${id}`);
  }
}

/** The directories and files of every view in the catalog, each rendered by `render`. */
function viewDirectory(render: (renderer: ViewRenderer, path: string) => string | Uint8Array): DirNode {
  const root = new Map<string, FsNode>();
  for (const [path, renderer] of viewRenderers) {
    const names = path.split("/");
    let entries = root;
    for (const name of names.slice(0, -1)) {
      let dir = entries.get(name) as StaticDirectory | undefined;
      if (dir === undefined) {
        dir = staticDirectory(new Map());
        entries.set(name, dir);
      }
      entries = dir.entries;
    }
    const file: FileNode = { kind: "file", open: () => render(renderer, path) };
    entries.set(names[names.length - 1], file);
  }
  return staticDirectory(root);
}

interface StaticDirectory extends DirNode {
  entries: Map<string, FsNode>;
}

function staticDirectory(entries: Map<string, FsNode>): StaticDirectory {
  return {
    kind: "dir",
    entries,
    lookup: (name) => entries.get(name),
    list: () => [...entries.keys()],
  };
}

function checkOptions(options: ProcviewTreeOptions): ProcviewTreeOptions {
  if (typeof options !== "object" || options === null) throw new Error("procview tree options must be an object");
  if (typeof options.stateDir !== "string" || !options.stateDir.startsWith("/")) {
    throw new Error(`procview tree needs an absolute stateDir, got ${JSON.stringify(options.stateDir)}`);
  }
  if (options.procDir !== undefined && (typeof options.procDir !== "string" || !options.procDir.startsWith("/"))) {
    throw new Error(`procview tree procDir must be an absolute path, got ${JSON.stringify(options.procDir)}`);
  }
  return options;
}

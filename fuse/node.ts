/**
 * The node tree a FUSE server serves: the contract between the wire protocol
 * (fuse/kernel/) and whatever builds the files (e.g. procview's per-container views).
 * Nodes are looked up by name on every kernel LOOKUP, so a tree can reflect a world
 * that changes underneath it (containers come and go) without telling the server.
 */

export interface RequestContext {
  /** The calling process as the kernel saw it (host pid namespace). */
  pid: number;
  uid: number;
  gid: number;
  /** A re-read of an open handle from offset 0: render from the files, not from figures shared with other reads. */
  rerender?: boolean;
}

/** Errno values the server and trees answer with (Linux, positive). */
export const errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EROFS: 30,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENODATA: 61,
  EPROTO: 71,
} as const;

/** Thrown by a node to answer with a specific errno (positive, e.g. 2 for ENOENT). */
export class FsError extends Error {
  readonly errno: number;

  constructor(errnoValue: number, message?: string) {
    super(message ?? `errno ${errnoValue}`);
    this.name = "FsError";
    this.errno = errnoValue;
  }
}

/**
 * `stable`: the kernel may keep the entry for a minute, where other entries expire after half
 * a second. The name leads to this same node for as long as its parent directory exists (a
 * view file, a fixed folder), or until the server's main thread expires the entry because
 * the name left an audited directory (TreeModule.auditedDirectories: containers/<id>).
 */
interface NodeEntry {
  stable?: boolean;
}

export interface FileNode extends NodeEntry {
  kind: "file";
  /**
   * The file's content, built at open and again at each read from offset 0 once the last
   * rendering was read (seq_file semantics); reads in between slice one rendering.
   */
  open(ctx: RequestContext): Uint8Array | string;
}

export interface DirNode extends NodeEntry {
  kind: "dir";
  /**
   * Permission bits, 0o555 when absent. The mount has default_permissions, so the
   * kernel enforces them: 0o711 lets everyone reach a known name but only root list it.
   */
  mode?: number;
  /** undefined answers ENOENT, and is not cached by the kernel. */
  lookup(name: string, ctx: RequestContext): FsNode | undefined;
  list(ctx: RequestContext): string[];
}

export type FsNode = FileNode | DirNode;

/** A module that builds a tree inside the serving thread (options must be structured-clonable). */
export interface TreeModule {
  createTree(options: unknown): DirNode | Promise<DirNode>;
  /** Directories whose stable entries the server expires when their names go (fuse/kernel/entry-audit.ts). */
  auditedDirectories?(options: unknown): AuditedDirectory[];
}

/** A directory of stable entries whose names come and go. */
export interface AuditedDirectory {
  /** Names from the root to the directory, e.g. ["containers"]. */
  path: string[];
  /** The names it holds now; read on the server's main thread, so never through the mount. */
  names(): ReadonlySet<string>;
  /**
   * A token that changes whenever names() may have changed (a folder's modification time):
   * while it stays the same no round looks at the names again. Without it every round does.
   */
  version?(): string | undefined;
}

/** O_WRONLY | O_RDWR | O_TRUNC: opens that would change a file, which every tree here refuses (EROFS). */
export const writingOpenFlags = 0o1 | 0o2 | 0o1000;

/** The node `names` lead to from `root` by lookups: ENOTDIR past a file, ENOENT at a missing name. */
export function walkPath(root: FsNode, names: Iterable<string>, ctx: RequestContext): FsNode {
  let node = root;
  for (const name of names) {
    if (name === "") continue;
    if (node.kind !== "dir") throw new FsError(errno.ENOTDIR);
    const next: FsNode | undefined = node.lookup(name, ctx);
    if (next === undefined) throw new FsError(errno.ENOENT);
    node = next;
  }
  return node;
}

const encoder = new TextEncoder();

/** A file's content rendered now for `ctx`, as bytes; EISDIR for a directory. */
export function renderFile(node: FsNode, ctx: RequestContext): Uint8Array {
  if (node.kind !== "file") throw new FsError(errno.EISDIR);
  const content = node.open(ctx);
  return typeof content === "string" ? encoder.encode(content) : content;
}

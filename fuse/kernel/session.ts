/**
 * Answers one FUSE request: decode, ask the node tree, encode. No I/O of its own, so
 * the request loop can run one session per worker thread and tests can drive it from
 * byte vectors. Shared state (node ids, open handles) lives in the tables it is given;
 * what a session keeps to itself is only a cache of resolved tree nodes.
 */

import type { Logger } from "../../core/log.ts";
import { FsError, errno, renderFile, walkPath, writingOpenFlags, type DirNode, type FsNode, type RequestContext } from "../node.ts";
import { pageAlignment, type KnownSizes } from "./known-sizes.ts";
import { ReaderBoundError, StoreFullError, type HandleOwner, type HandleStore } from "./handle-store.ts";
import type { NodeTable } from "./node-table.ts";
import {
  decodeBatchForget,
  decodeForgetCount,
  decodeInitRequest,
  decodeName,
  decodeOpenFlags,
  decodeReadRequest,
  decodeReleaseHandle,
  direntSize,
  encodeAttrReply,
  encodeEntryReply,
  encodeInitReply,
  encodeNotifyStore,
  encodeOpenReply,
  encodeReply,
  encodeStatfsReply,
  fileType,
  implementedMinor,
  initFlag,
  kernelMajor,
  oldestSupportedMinor,
  opcode,
  openFlag,
  parseRequestHeader,
  requestHeaderSize,
  type ReadRequest,
  rootNodeId,
  writeDirent,
  type Attributes,
  type RequestHeader,
} from "./protocol.ts";

/**
 * Half a second, as LXCFS: containers read their views through bind mounts, which
 * pin the file's inode and never walk our tree, so the timeouts only shape host-side
 * browsing. Long enough that `ls -l` or a path walk costs one LOOKUP per name, short
 * enough that a name that goes unannounced disappears almost at once (a container's
 * folder is stable instead, and expired when it goes: entry-audit.ts). Negative
 * answers are never cached, so a new container is visible immediately.
 */
export const defaultEntryTimeoutMs = 500;
/** For stable nodes (fuse/node.ts): a path walk below a container's folder costs one LOOKUP a minute, not one per half second. */
export const stableEntryTimeoutMs = 60_000;
/**
 * Every node's attributes, for a minute. Only a file's size changes, and the kernel learns
 * it from each open's store (known-sizes.ts), while default_permissions checks the
 * attributes at every open and at every step of a path walk: expired, each check cost a
 * GETATTR, whose size (0, or the caller's own rendering) then made the next open store
 * again. With a file's attributes kept half a second, a host-side reader cycling over
 * 1,000 containers paid ~1.3x the daemon CPU per read of one reading a single container
 * (bench/containers.ts), and a container that reads a view every second paid a GETATTR
 * and a store at every read.
 */
export const attrTimeoutMs = 60_000;

/** Largest write the kernel may send; nothing is writable, so it only sizes the read buffer. */
export const maxWrite = 128 * 1024;
/** The kernel refuses reads into buffers smaller than a full write request. */
export const requestBufferSize = maxWrite + 4096;

const writeOpcodes: ReadonlySet<number> = new Set([
  opcode.SETATTR,
  opcode.SYMLINK,
  opcode.MKNOD,
  opcode.MKDIR,
  opcode.UNLINK,
  opcode.RMDIR,
  opcode.RENAME,
  opcode.LINK,
  opcode.WRITE,
  opcode.SETXATTR,
  opcode.REMOVEXATTR,
  opcode.CREATE,
  opcode.FALLOCATE,
  opcode.RENAME2,
  opcode.COPY_FILE_RANGE,
  opcode.TMPFILE,
]);

/**
 * A root-level name answered ENOENT without asking the tree: the request loop looks
 * it up to wake a blocked worker at stop, and must not depend on what the tree does.
 */
export const stopPokeName = ".fuse-stop-poke";


export interface SessionOptions {
  root: DirNode;
  nodes: NodeTable;
  handles: HandleStore;
  logger: Logger;
  entryTimeoutMs?: number;
  /** Reported as every file's times, in seconds since the epoch. */
  timeSeconds?: number;
  /**
   * Takes an unsolicited message for the kernel, to be written before the reply being built
   * (`beforeReply`) or after it. A page-cache store must never hold up a READ's reply: the
   * READ may be a page read that locks the very page the store fills (deferred-writes.ts).
   */
  notify?: (message: Uint8Array, beforeReply: boolean) => void;
  /** What the kernel knows of each file's size, where one thread sends every reply: stores it makes redundant are left out. */
  knownSizes?: KnownSizes;
  /**
   * Names the reading cgroup of the caller, to which the handles it opens are charged
   * (each has its own bound); the worker reads /proc/<pid>/cgroup. Without it every
   * caller shares one bound.
   */
  readerOf?: (ctx: RequestContext) => string;
}

interface CachedNode {
  generation: number;
  node: FsNode;
}

const encoder = new TextEncoder();

export class FuseSession {
  readonly #root: DirNode;
  readonly #nodes: NodeTable;
  readonly #handles: HandleStore;
  readonly #knownSizes: KnownSizes | undefined;
  readonly #logger: Logger;
  readonly #entryTimeoutMs: number;
  readonly #timeSeconds: number;
  readonly #resolved = new Map<number, CachedNode>();
  readonly #notify: (message: Uint8Array, beforeReply: boolean) => void;
  readonly #readerOf: (ctx: RequestContext) => string;

  constructor(options: SessionOptions) {
    this.#notify = options.notify ?? (() => {});
    this.#readerOf = options.readerOf ?? (() => "every reader");
    this.#root = options.root;
    this.#nodes = options.nodes;
    this.#handles = options.handles;
    this.#knownSizes = options.knownSizes;
    this.#logger = options.logger;
    this.#entryTimeoutMs = options.entryTimeoutMs ?? defaultEntryTimeoutMs;
    this.#timeSeconds = options.timeSeconds ?? Math.floor(Date.now() / 1000);
  }

  /** The reply to write back, or undefined for requests that get none (FORGET, INTERRUPT). */
  handle(request: Uint8Array): Uint8Array | undefined {
    let header: RequestHeader;
    try {
      header = parseRequestHeader(request);
    } catch (err) {
      // Without a trustworthy header there is no `unique` to answer to.
      this.#logger.error("malformed FUSE request dropped", { err });
      return undefined;
    }
    const body = request.subarray(requestHeaderSize);
    try {
      const reply = this.#dispatch(header, body);
      return reply === noReply ? undefined : encodeReply(header.unique, 0, reply);
    } catch (err) {
      if (err instanceof FsError) return encodeReply(header.unique, err.errno);
      this.#logger.error("FUSE request failed", { opcode: header.opcode, nodeId: header.nodeId, pid: header.pid, err });
      return encodeReply(header.unique, errno.EIO);
    }
  }

  #dispatch(header: RequestHeader, body: Uint8Array): Uint8Array | typeof noReply {
    const ctx: RequestContext = { pid: header.pid, uid: header.uid, gid: header.gid };
    switch (header.opcode) {
      case opcode.INIT:
        return this.#init(body);
      case opcode.LOOKUP:
        return this.#lookup(header.nodeId, decodeName(body), ctx);
      case opcode.GETATTR:
        return this.#getattr(header.nodeId, ctx);
      case opcode.OPEN:
        return this.#open(header.nodeId, decodeOpenFlags(body), ctx);
      case opcode.READ:
        return this.#read(header.nodeId, decodeReadRequest(body), ctx);
      case opcode.RELEASE:
      case opcode.RELEASEDIR:
        this.#handles.release(decodeReleaseHandle(body));
        return empty;
      case opcode.OPENDIR:
        return this.#openDirectory(header.nodeId, ctx);
      case opcode.READDIR:
        return this.#readDirectory(body);
      case opcode.STATFS:
        return encodeStatfsReply({ blocks: 0, files: this.#nodes.liveCount, blockSize: 4096, nameMax: 255 });
      case opcode.ACCESS:
        this.#resolve(header.nodeId, ctx);
        return empty;
      case opcode.FORGET:
        this.#forget(header.nodeId, decodeForgetCount(body));
        return noReply;
      case opcode.BATCH_FORGET:
        for (const forget of decodeBatchForget(body)) this.#forget(forget.nodeId, forget.count);
        return noReply;
      case opcode.INTERRUPT:
        // Every handler runs to completion without blocking, so the interrupted request
        // is answered (or already was) by the worker that took it; the kernel accepts that.
        return noReply;
      case opcode.DESTROY:
        return empty;
      case opcode.READLINK:
        throw new FsError(errno.EINVAL, "no symbolic links here");
      default:
        // FLUSH, FSYNC, xattrs, locks, ...: ENOSYS makes the kernel stop asking.
        throw new FsError(writeOpcodes.has(header.opcode) ? errno.EROFS : errno.ENOSYS);
    }
  }

  #init(body: Uint8Array): Uint8Array {
    const init = decodeInitRequest(body);
    if (init.major !== kernelMajor || init.minor < oldestSupportedMinor) {
      this.#logger.error("unsupported FUSE kernel protocol", { major: init.major, minor: init.minor });
      throw new FsError(errno.EPROTO);
    }
    return encodeInitReply({
      minor: Math.min(init.minor, implementedMinor),
      maxReadahead: Math.min(init.maxReadahead, 128 * 1024),
      flags: init.flags & (initFlag.ASYNC_READ | initFlag.PARALLEL_DIROPS),
      maxBackground: 16,
      congestionThreshold: 12,
      maxWrite,
      timeGranularity: 1,
      maxPages: 0,
    });
  }

  #lookup(parentId: number, name: string, ctx: RequestContext): Uint8Array {
    if (parentId === rootNodeId && name === stopPokeName) throw new FsError(errno.ENOENT);
    const parent = this.#resolve(parentId, ctx);
    if (parent.kind !== "dir") throw new FsError(errno.ENOTDIR);
    const child = parent.lookup(name, ctx);
    if (child === undefined) throw new FsError(errno.ENOENT);
    const ref = this.#nodes.lookup(parentId, name);
    if (ref.created) this.#knownSizes?.created(ref.nodeId);
    // A fresh lookup replaces whatever this worker resolved for the id before.
    this.#resolved.set(ref.nodeId, { generation: ref.generation, node: child });
    return encodeEntryReply({
      nodeId: ref.nodeId,
      generation: ref.generation,
      entryValidMs: child.stable === true ? Math.max(this.#entryTimeoutMs, stableEntryTimeoutMs) : this.#entryTimeoutMs,
      attrValidMs: attrTimeoutMs,
      attr: this.#attributes(ref.nodeId, child, ctx),
    });
  }

  #getattr(nodeId: number, ctx: RequestContext): Uint8Array {
    const node = this.#resolve(nodeId, ctx);
    return encodeAttrReply(attrTimeoutMs, this.#attributes(nodeId, node, ctx));
  }

  #open(nodeId: number, flags: number, ctx: RequestContext): Uint8Array {
    if ((flags & writingOpenFlags) !== 0) throw new FsError(errno.EROFS);
    return encodeOpenReply(this.#openHandle(this.#render(nodeId, ctx), nodeId, ctx), openFlag.DIRECT_IO);
  }

  /** A handle charged to the caller's cgroup; a refusal for its bound (or a full store) is logged, rate-limited by the store. */
  #openHandle(content: Uint8Array, nodeId: number, ctx: RequestContext): number {
    const owner: HandleOwner = { reader: this.#readerOf(ctx), nodeId, pid: ctx.pid };
    try {
      return this.#handles.open(content, owner);
    } catch (err) {
      if (err instanceof ReaderBoundError && err.worthLogging) {
        this.#logger.warn("a reading cgroup holds its bound of open views: its opens fail until it closes some (logged once per 10 minutes)", {
          reader: owner.reader,
          pid: ctx.pid,
          uid: ctx.uid,
          bound: err.bound,
          limit: err.limit,
          errno: err.errno,
        });
      } else if (err instanceof StoreFullError && err.worthLogging) {
        this.#logger.error("the handle store is full for every reader (logged once per 10 minutes)", { message: err.message, errno: err.errno });
      }
      throw err;
    }
  }

  /**
   * Slices the handle's snapshot. A read from offset 0 after the snapshot was read renders
   * the file again (procfs's seq_file does the same): programs that keep a view open and
   * re-read it from the start (procps with /proc/stat and /proc/meminfo) see it change,
   * and every pass over the file still reads one rendering. The READ's own caller renders
   * it, as in LXCFS: in the reader-pid layout that is whoever reads now.
   */
  #read(nodeId: number, read: ReadRequest, ctx: RequestContext): Uint8Array {
    if (read.offset === 0 && this.#handles.readSinceStored(read.fileHandle) === true) {
      this.#handles.replace(read.fileHandle, this.#render(nodeId, { ...ctx, rerender: true }, false));
    }
    const data = this.#handles.read(read.fileHandle, read.offset, read.size);
    if (data === undefined) throw new FsError(errno.EBADF, `file handle ${read.fileHandle} is not open`);
    this.#knownSizes?.read(nodeId, read.offset, read.size, data.byteLength);
    return data;
  }

  /**
   * A file's content for `ctx`, its size told to the kernel (unless it knows the file to be
   * that long already, known-sizes.ts): before the OPEN's reply, so that the opener's
   * sendfile finds it; after a READ's (`beforeReply` false).
   */
  #render(nodeId: number, ctx: RequestContext, beforeReply = true): Uint8Array {
    const bytes = renderFile(this.#resolve(nodeId, ctx), ctx);
    if (bytes.byteLength === 0 || this.#knownSizes?.needsStore(nodeId, bytes.byteLength) === false) return bytes;
    const offset = sizeStoreOffset(bytes.byteLength);
    const sizeStore = encodeNotifyStore(nodeId, offset, bytes.subarray(bytes.byteLength - 1));
    this.#knownSizes?.queued(sizeStore, nodeId, offset + 1);
    this.#notify(sizeStore, beforeReply);
    return bytes;
  }

  /** Lists the directory once, as fuse_dirent records, so READDIR offsets stay stable. */
  #openDirectory(nodeId: number, ctx: RequestContext): Uint8Array {
    const dir = this.#resolve(nodeId, ctx);
    if (dir.kind !== "dir") throw new FsError(errno.ENOTDIR);
    const entries: { ino: number; type: number; name: Uint8Array }[] = [
      { ino: nodeId, type: fileType.DT_DIR, name: encoder.encode(".") },
      { ino: this.#nodes.parentOf(nodeId) ?? rootNodeId, type: fileType.DT_DIR, name: encoder.encode("..") },
    ];
    for (const name of dir.list(ctx)) {
      const child = this.#lookupForListing(dir, name, ctx);
      if (child === undefined) continue;
      entries.push({ ino: listingIno(nodeId, name), type: child.kind === "dir" ? fileType.DT_DIR : fileType.DT_REG, name: encoder.encode(name) });
    }
    const records = new Uint8Array(entries.reduce((sum, entry) => sum + direntSize(entry.name.byteLength), 0));
    let offset = 0;
    for (const entry of entries) {
      const size = direntSize(entry.name.byteLength);
      writeDirent(records, offset, { ...entry, nextOffset: offset + size });
      offset += size;
    }
    return encodeOpenReply(this.#openHandle(records, nodeId, ctx), 0);
  }

  /** A listed name whose node cannot be looked up (gone meanwhile, or failing) is left out. */
  #lookupForListing(dir: DirNode, name: string, ctx: RequestContext): FsNode | undefined {
    try {
      return dir.lookup(name, ctx);
    } catch (err) {
      if (!(err instanceof FsError)) this.#logger.error("lookup failed while listing a directory", { name, err });
      return undefined;
    }
  }

  /** Whole dirent records from the READDIR offset that fit the kernel's buffer. */
  #readDirectory(body: Uint8Array): Uint8Array {
    const read = decodeReadRequest(body);
    const data = this.#handles.read(read.fileHandle, read.offset, read.size);
    if (data === undefined) throw new FsError(errno.EBADF, `directory handle ${read.fileHandle} is not open`);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let end = 0;
    while (end + 24 <= data.byteLength && end + direntSize(dv.getUint32(end + 16, true)) <= data.byteLength) {
      end += direntSize(dv.getUint32(end + 16, true));
    }
    return data.subarray(0, end);
  }

  #forget(nodeId: number, count: number): void {
    this.#nodes.forget(nodeId, count);
    const generation = this.#nodes.generationOf(nodeId);
    if (generation === undefined) this.#knownSizes?.forget(nodeId);
    if (generation !== this.#resolved.get(nodeId)?.generation) this.#resolved.delete(nodeId);
  }

  /** The tree node behind a kernel node id: cached per worker, else walked from the root. */
  #resolve(nodeId: number, ctx: RequestContext): FsNode {
    if (nodeId === rootNodeId) return this.#root;
    const cached = this.#resolved.get(nodeId);
    if (cached !== undefined && cached.generation === this.#nodes.generationOf(nodeId)) return cached.node;
    const path = this.#nodes.path(nodeId);
    if (path === undefined) throw new FsError(errno.ENOENT, `unknown node id ${nodeId}`);
    const node = walkPath(this.#root, path.names, ctx);
    this.#resolved.set(nodeId, { generation: path.generation, node });
    return node;
  }

  /**
   * A file's attributes give size 0, as procfs's do, except to a process that holds it
   * open: the length of its rendering, which a private mmap(2) reads through READ (the
   * kernel raises SIGBUS at a touch past the size it knows). Between attribute replies,
   * a minute apart, stat(2) gives the size the kernel holds, which each open's store
   * makes at least the opener's rendering's length.
   */
  #attributes(nodeId: number, node: FsNode, ctx: RequestContext): Attributes {
    const isDir = node.kind === "dir";
    const size = isDir ? 0 : (this.#handles.renderingLength(nodeId, ctx.pid) ?? 0);
    if (!isDir) this.#knownSizes?.attributes(nodeId, size);
    return {
      ino: nodeId,
      size,
      mode: isDir ? fileType.S_IFDIR | (node.mode ?? 0o555) : fileType.S_IFREG | 0o444,
      nlink: isDir ? 2 : 1,
      uid: 0,
      gid: 0,
      timeSeconds: this.#timeSeconds,
    };
  }
}

/**
 * Where a FUSE_NOTIFY_STORE of one byte, the rendering's last, makes the kernel's size of
 * the file at least the rendering's `length` and puts none of it in the page cache.
 * direct_io: read(2) comes to us until EOF whatever size the file has (0, as procfs
 * reports). sendfile(2) and splice(2) (busybox cat, libuv's copyfile) instead read through
 * the page cache up to that size, and the page cache is one per file for every reader: the pages must be filled by each reader's own
 * READ (the opener drops them at open), never by a store, which another reader would read.
 * So the store is one byte, where it leaves its page not up to date (not at a page's
 * start, where the kernel would count a page it fills to the file's end as read): the
 * reader's READ still fills that page; its short reply trims a size grown past the content.
 * An empty rendering needs none: there is no size to grow to.
 */
function sizeStoreOffset(length: number): number {
  const last = length - 1;
  // One byte past the end when the last starts a page.
  return last % pageAlignment === 0 ? length : last;
}

const noReply = Symbol("no reply");
const empty = new Uint8Array(0);

/**
 * d_ino for a listed name that may never have been looked up (so has no node id yet):
 * a hash above every node id this server hands out, so it never claims another file's inode.
 */
function listingIno(parentId: number, name: string): number {
  let hash = 0x811c9dc5 ^ parentId;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return 2 ** 24 + ((hash >>> 0) % (2 ** 31 - 2 ** 24));
}

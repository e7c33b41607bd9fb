/**
 * The FUSE kernel wire format (include/uapi/linux/fuse.h), as far as a read-only
 * server needs it: request header and argument decoding, reply header and structure
 * encoding. Pure byte work, no I/O, so every layout is unit-tested from byte vectors.
 * All integers are little-endian (x86-64 and arm64 hosts).
 */

export const kernelMajor = 7;
/** The minor version whose structure layouts this file writes. */
export const implementedMinor = 31;
/** Below 7.12 the attr and entry replies had other sizes; such kernels are long gone. */
export const oldestSupportedMinor = 12;

export const rootNodeId = 1;
export const requestHeaderSize = 40;
export const replyHeaderSize = 16;

export const opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  TMPFILE: 51,
} as const;

/** FUSE_INIT capability flags this server may accept. */
export const initFlag = {
  ASYNC_READ: 1 << 0,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
} as const;

/** fuse_open_out.open_flags */
export const openFlag = {
  DIRECT_IO: 1 << 0,
} as const;

export const fileType = {
  S_IFDIR: 0o040000,
  S_IFREG: 0o100000,
  DT_DIR: 4,
  DT_REG: 8,
} as const;

export interface RequestHeader {
  /** Total request length, header included. */
  length: number;
  opcode: number;
  /** Echoed verbatim in the reply. */
  unique: bigint;
  nodeId: number;
  uid: number;
  gid: number;
  pid: number;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Node ids this server hands out stay below 2^53, so they are plain numbers. */
function readU64AsNumber(dv: DataView, offset: number): number {
  return dv.getUint32(offset, true) + dv.getUint32(offset + 4, true) * 2 ** 32;
}

function writeU64(dv: DataView, offset: number, value: number): void {
  dv.setUint32(offset, value % 2 ** 32, true);
  dv.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}

export function parseRequestHeader(bytes: Uint8Array): RequestHeader {
  if (bytes.byteLength < requestHeaderSize) {
    throw new Error(`FUSE request of ${bytes.byteLength} bytes is shorter than its ${requestHeaderSize}-byte header`);
  }
  const dv = view(bytes);
  const length = dv.getUint32(0, true);
  if (length !== bytes.byteLength) {
    throw new Error(`FUSE request header says ${length} bytes but ${bytes.byteLength} were read`);
  }
  return {
    length,
    opcode: dv.getUint32(4, true),
    unique: dv.getBigUint64(8, true),
    nodeId: readU64AsNumber(dv, 16),
    uid: dv.getUint32(24, true),
    gid: dv.getUint32(28, true),
    pid: dv.getUint32(32, true),
  };
}

/** A reply: 16-byte header (length, negative errno, unique) and the body. */
export function encodeReply(unique: bigint, errnoValue: number, body?: Uint8Array): Uint8Array {
  const bodyLength = errnoValue === 0 && body ? body.byteLength : 0;
  const out = new Uint8Array(replyHeaderSize + bodyLength);
  const dv = view(out);
  dv.setUint32(0, out.byteLength, true);
  dv.setInt32(4, -errnoValue, true);
  dv.setBigUint64(8, unique, true);
  if (bodyLength > 0) out.set(body!, replyHeaderSize);
  return out;
}

const nameEncoder = new TextEncoder();

/** Unsolicited messages to the kernel: unique 0, the notify code in the error field. */
export const notifyCode = { INVAL_ENTRY: 3, STORE: 4 } as const;

/**
 * FUSE_NOTIFY_INVAL_ENTRY: drops the kernel's entry for `name` in `parentId`, so the next
 * path walk through it asks again (LOOKUP). No flags: FUSE_EXPIRE_ONLY needs kernel 6.2, and
 * what else the kernel does without it (unhash the entry, detach mounts *on* names below it)
 * never touches this tree's names, which are bind sources, never mountpoints.
 */
export function encodeNotifyInvalEntry(parentId: number, name: string): Uint8Array {
  const nameBytes = nameEncoder.encode(name);
  const out = new Uint8Array(replyHeaderSize + 16 + nameBytes.byteLength + 1);
  const dv = view(out);
  dv.setUint32(0, out.byteLength, true);
  dv.setInt32(4, notifyCode.INVAL_ENTRY, true);
  dv.setBigUint64(8, 0n, true);
  dv.setBigUint64(16, BigInt(parentId), true);
  dv.setUint32(24, nameBytes.byteLength, true);
  out.set(nameBytes, replyHeaderSize + 16);
  return out;
}

/**
 * FUSE_NOTIFY_STORE: puts `data` in the kernel's page cache of `nodeId` at `offset` and
 * grows the file's size to cover it.
 */
export function encodeNotifyStore(nodeId: number, offset: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(replyHeaderSize + 24 + data.byteLength);
  const dv = view(out);
  dv.setUint32(0, out.byteLength, true);
  dv.setInt32(4, notifyCode.STORE, true);
  dv.setBigUint64(8, 0n, true);
  dv.setBigUint64(16, BigInt(nodeId), true);
  dv.setBigUint64(24, BigInt(offset), true);
  dv.setUint32(32, data.byteLength, true);
  out.set(data, replyHeaderSize + 24);
  return out;
}

export interface InitRequest {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
}

export function decodeInitRequest(body: Uint8Array): InitRequest {
  requireLength(body, 16, "INIT");
  const dv = view(body);
  return {
    major: dv.getUint32(0, true),
    minor: dv.getUint32(4, true),
    maxReadahead: dv.getUint32(8, true),
    flags: dv.getUint32(12, true),
  };
}

export interface InitReply {
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  /** Timestamp granularity in ns; we report whole seconds, so 1 is honest enough. */
  timeGranularity: number;
  maxPages: number;
}

/** fuse_init_out as of 7.31 (64 bytes with its reserved tail). */
export function encodeInitReply(reply: InitReply): Uint8Array {
  const out = new Uint8Array(64);
  const dv = view(out);
  dv.setUint32(0, kernelMajor, true);
  dv.setUint32(4, reply.minor, true);
  dv.setUint32(8, reply.maxReadahead, true);
  dv.setUint32(12, reply.flags, true);
  dv.setUint16(16, reply.maxBackground, true);
  dv.setUint16(18, reply.congestionThreshold, true);
  dv.setUint32(20, reply.maxWrite, true);
  dv.setUint32(24, reply.timeGranularity, true);
  dv.setUint16(28, reply.maxPages, true);
  return out;
}

export interface Attributes {
  ino: number;
  size: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** atime, mtime and ctime alike, in seconds since the epoch. */
  timeSeconds: number;
}

const attrSize = 88;

function writeAttr(dv: DataView, offset: number, attr: Attributes): void {
  writeU64(dv, offset, attr.ino);
  writeU64(dv, offset + 8, attr.size);
  writeU64(dv, offset + 16, Math.ceil(attr.size / 512));
  writeU64(dv, offset + 24, attr.timeSeconds);
  writeU64(dv, offset + 32, attr.timeSeconds);
  writeU64(dv, offset + 40, attr.timeSeconds);
  // atimensec, mtimensec, ctimensec stay 0
  dv.setUint32(offset + 60, attr.mode, true);
  dv.setUint32(offset + 64, attr.nlink, true);
  dv.setUint32(offset + 68, attr.uid, true);
  dv.setUint32(offset + 72, attr.gid, true);
  // rdev 0
  dv.setUint32(offset + 80, 4096, true); // blksize
}

/** A cache lifetime split as the kernel wants it: whole seconds and nanoseconds. */
function writeValidity(dv: DataView, secondsOffset: number, nsecOffset: number, milliseconds: number): void {
  writeU64(dv, secondsOffset, Math.floor(milliseconds / 1000));
  dv.setUint32(nsecOffset, (milliseconds % 1000) * 1_000_000, true);
}

export interface EntryReply {
  nodeId: number;
  generation: number;
  entryValidMs: number;
  attrValidMs: number;
  attr: Attributes;
}

/** fuse_entry_out (128 bytes). */
export function encodeEntryReply(entry: EntryReply): Uint8Array {
  const out = new Uint8Array(40 + attrSize);
  const dv = view(out);
  writeU64(dv, 0, entry.nodeId);
  writeU64(dv, 8, entry.generation);
  writeValidity(dv, 16, 32, entry.entryValidMs);
  writeValidity(dv, 24, 36, entry.attrValidMs);
  writeAttr(dv, 40, entry.attr);
  return out;
}

/** fuse_attr_out (104 bytes). */
export function encodeAttrReply(attrValidMs: number, attr: Attributes): Uint8Array {
  const out = new Uint8Array(16 + attrSize);
  const dv = view(out);
  writeValidity(dv, 0, 8, attrValidMs);
  writeAttr(dv, 16, attr);
  return out;
}

/** fuse_open_out (16 bytes). */
export function encodeOpenReply(fileHandle: number, openFlags: number): Uint8Array {
  const out = new Uint8Array(16);
  const dv = view(out);
  writeU64(dv, 0, fileHandle);
  dv.setUint32(8, openFlags, true);
  return out;
}

export interface StatfsReply {
  blocks: number;
  files: number;
  blockSize: number;
  nameMax: number;
}

/** fuse_statfs_out (80 bytes): nothing free, since nothing can be written. */
export function encodeStatfsReply(statfs: StatfsReply): Uint8Array {
  const out = new Uint8Array(80);
  const dv = view(out);
  writeU64(dv, 0, statfs.blocks);
  writeU64(dv, 24, statfs.files);
  dv.setUint32(40, statfs.blockSize, true);
  dv.setUint32(44, statfs.nameMax, true);
  dv.setUint32(48, statfs.blockSize, true); // frsize
  return out;
}

/** Size of one fuse_dirent: 24 bytes of fields, the name, padding to 8. */
export function direntSize(nameByteLength: number): number {
  return (24 + nameByteLength + 7) & ~7;
}

/**
 * Writes one fuse_dirent at `offset` of `target`; `nextOffset` is the READDIR offset
 * that resumes after this entry. Returns the bytes written.
 */
export function writeDirent(target: Uint8Array, offset: number, entry: { ino: number; nextOffset: number; type: number; name: Uint8Array }): number {
  const size = direntSize(entry.name.byteLength);
  const dv = view(target);
  writeU64(dv, offset, entry.ino);
  writeU64(dv, offset + 8, entry.nextOffset);
  dv.setUint32(offset + 16, entry.name.byteLength, true);
  dv.setUint32(offset + 20, entry.type, true);
  target.set(entry.name, offset + 24);
  target.fill(0, offset + 24 + entry.name.byteLength, offset + size);
  return size;
}

function requireLength(body: Uint8Array, length: number, what: string): void {
  if (body.byteLength < length) {
    throw new Error(`FUSE ${what} arguments are ${body.byteLength} bytes, expected at least ${length}`);
  }
}

const utf8 = new TextDecoder();

/** A NUL-terminated name (LOOKUP, GETXATTR, ...). */
export function decodeName(body: Uint8Array): string {
  const end = body.indexOf(0);
  return utf8.decode(end < 0 ? body : body.subarray(0, end));
}

export interface ReadRequest {
  fileHandle: number;
  offset: number;
  size: number;
}

/** fuse_read_in, shared by READ and READDIR. */
export function decodeReadRequest(body: Uint8Array): ReadRequest {
  requireLength(body, 24, "READ");
  const dv = view(body);
  return { fileHandle: readU64AsNumber(dv, 0), offset: readU64AsNumber(dv, 8), size: dv.getUint32(16, true) };
}

/** fuse_open_in: the open(2) flags. */
export function decodeOpenFlags(body: Uint8Array): number {
  requireLength(body, 4, "OPEN");
  return view(body).getUint32(0, true);
}

/** fuse_release_in: the file handle (RELEASE and RELEASEDIR). */
export function decodeReleaseHandle(body: Uint8Array): number {
  requireLength(body, 8, "RELEASE");
  return readU64AsNumber(view(body), 0);
}

/** fuse_forget_in: how many lookups the kernel gives back. */
export function decodeForgetCount(body: Uint8Array): number {
  requireLength(body, 8, "FORGET");
  return readU64AsNumber(view(body), 0);
}

export interface Forget {
  nodeId: number;
  count: number;
}

/** fuse_batch_forget_in followed by its fuse_forget_one entries. */
export function decodeBatchForget(body: Uint8Array): Forget[] {
  requireLength(body, 8, "BATCH_FORGET");
  const dv = view(body);
  const count = dv.getUint32(0, true);
  requireLength(body, 8 + count * 16, "BATCH_FORGET");
  const forgets: Forget[] = [];
  for (let i = 0; i < count; i++) {
    const at = 8 + i * 16;
    forgets.push({ nodeId: readU64AsNumber(dv, at), count: readU64AsNumber(dv, at + 8) });
  }
  return forgets;
}

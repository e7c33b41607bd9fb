/**
 * A FUSE server of one fixed file, `/view` (a loadavg line), for bench/transport.ts: what
 * the kernel transport alone costs per open+read+close, with no rendering, over
 * /dev/fuse read(2)/write(2) (`device` sleeps in read(2) between requests,
 * `device-looking` first polls for the next one for spinMs, as procview's main thread
 * does) or FUSE over io_uring (kernel 6.14+, fuse's
 * enable_uring parameter on): `uring-one-thread` serves every CPU's queue from one
 * unpinned thread; `uring-per-cpu` serves each CPU's queue from a process pinned to that
 * CPU (this process takes CPU 0 and starts one child per other CPU on the same /dev/fuse
 * descriptor), so a reader's requests are answered on the CPU it runs on.
 *
 *   node bench/transport-server.ts <device|device-looking|uring-one-thread|uring-per-cpu> <mountpoint>
 *
 * Prints "ready" once it serves (per CPU: once CPU 0's queue is registered; the kernel
 * holds requests back until every queue has its entries); serves until killed (the bench stops its
 * process group and unmounts). A bench instrument, not procview's server: it knows one file.
 */

import { spawn } from "node:child_process";
import { readFileSync, readSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { createLogger } from "../core/log.ts";
import { syscalls } from "../core/syscalls.ts";
import { openDeviceIo } from "../fuse/kernel/device-io.ts";
import { mountFuse, openFuseDevice } from "../fuse/kernel/mount.ts";
import { readRequest, requestDueSoon, sendReply } from "../fuse/kernel/serving.ts";
import {
  encodeAttrReply,
  encodeEntryReply,
  encodeOpenReply,
  decodeName,
  decodeReadRequest,
  encodeReply,
  implementedMinor,
  kernelMajor,
  opcode,
  openFlag,
  parseRequestHeader,
  requestHeaderSize,
  rootNodeId,
} from "../fuse/kernel/protocol.ts";

const content = new TextEncoder().encode("0.42 0.37 0.30 2/345 6789\n");
const fileNodeId = 2;
const fileName = "view";
const maxWrite = 128 * 1024;

/** INIT flags: ASYNC_READ, and INIT_EXT, which makes the kernel read flags2 (FUSE_OVER_IO_URING is its bit 9, 1 << 41 in all). */
const asyncRead = 1 << 0;
const initExt = 1 << 30;
const overIoUringFlags2 = 1 << 9;

const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
const libc = koffi.load("libc.so.6");
// syscall(2) declared per use with fixed arguments: on x86-64 and arm64 Linux integer and
// pointer arguments pass alike to variadic and fixed parameters.
const ioUringSetup = libc.func("long syscall(long number, unsigned int entries, void *params)");
const ioUringEnter = libc.func("long syscall(long number, int fd, unsigned int toSubmit, unsigned int minComplete, unsigned int flags, void *sig, size_t sigSize)");
const mmap = libc.func("void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)");
const schedSetaffinity = libc.func("int sched_setaffinity(int pid, size_t size, void *mask)");

const sysIoUringSetup = 425;
const sysIoUringEnter = 426;

function attributesOf(nodeId: number) {
  const isRoot = nodeId === rootNodeId;
  return { ino: nodeId, size: 0, mode: isRoot ? 0o040555 : 0o100444, nlink: isRoot ? 2 : 1, uid: 0, gid: 0, timeSeconds: 0 };
}

/** The reply body for one request, an errno, or null for requests that get no reply (FORGET). */
function answer(op: number, nodeId: number, body: Uint8Array): Uint8Array | number | null {
  switch (op) {
    case opcode.LOOKUP:
      if (nodeId !== rootNodeId || decodeName(body) !== fileName) return 2; // ENOENT
      return encodeEntryReply({ nodeId: fileNodeId, generation: 1, entryValidMs: 60_000, attrValidMs: 60_000, attr: attributesOf(fileNodeId) });
    case opcode.GETATTR:
      return encodeAttrReply(60_000, attributesOf(nodeId));
    case opcode.OPEN:
      return encodeOpenReply(1, openFlag.DIRECT_IO);
    case opcode.READ: {
      const read = decodeReadRequest(body);
      return content.subarray(Math.min(read.offset, content.byteLength), Math.min(read.offset + read.size, content.byteLength));
    }
    case opcode.OPENDIR:
      return encodeOpenReply(1, 0);
    case opcode.RELEASE:
    case opcode.RELEASEDIR:
      return new Uint8Array(0);
    case opcode.FORGET:
    case opcode.BATCH_FORGET:
      return null;
    default:
      return 38; // ENOSYS
  }
}

function pinToCpu(cpu: number): void {
  const mask = new Uint8Array(128);
  mask[cpu >> 3] = 1 << (cpu & 7);
  if (schedSetaffinity(0, mask.byteLength, mask) !== 0) throw new Error(`sched_setaffinity to CPU ${cpu} failed (errno ${koffi.errno()})`);
}

/** Reads the kernel's INIT and answers it, asking for io_uring when `uring`. */
function initialize(fd: number, uring: boolean): void {
  const buffer = new Uint8Array(64 * 1024);
  const length = readSync(fd, buffer, 0, buffer.byteLength, null);
  const request = buffer.subarray(0, length);
  const header = parseRequestHeader(request);
  const init = new DataView(request.buffer, requestHeaderSize);
  const kernelMinor = init.getUint32(4, true);
  const kernelFlags2 = init.getUint32(16, true);
  if (uring && (kernelFlags2 & overIoUringFlags2) === 0) throw new Error("the kernel offers no FUSE over io_uring (CONFIG_FUSE_IO_URING, /sys/module/fuse/parameters/enable_uring)");
  const reply = new DataView(new ArrayBuffer(64));
  reply.setUint32(0, kernelMajor, true);
  // The minor procview answers with (session.ts), whatever the transport.
  reply.setUint32(4, Math.min(kernelMinor, implementedMinor), true);
  reply.setUint32(8, maxWrite, true); // max_readahead
  reply.setUint32(12, asyncRead | initExt, true);
  reply.setUint16(16, 16, true); // max_background
  reply.setUint16(18, 12, true); // congestion_threshold
  reply.setUint32(20, maxWrite, true);
  reply.setUint32(24, 1, true); // time_gran
  if (uring) reply.setUint32(32, overIoUringFlags2, true);
  writeSync(fd, encodeReply(header.unique, 0, new Uint8Array(reply.buffer)));
}

/** Serves with blocking reads; `looking` first looks for a request for spinMs, as procview's main thread does. */
function serveDevice(fd: number, looking: boolean): never {
  const device = openDeviceIo(fd);
  const input = syscalls().watchInput(fd);
  const logger = createLogger({ level: "warn" });
  const buffer = new Uint8Array(maxWrite + 4096);
  process.stdout.write("ready\n");
  for (;;) {
    if (looking) requestDueSoon(input);
    const length = readRequest(device, buffer);
    if (length === "unmounted") process.exit(0);
    if (typeof length !== "number") continue;
    const request = buffer.subarray(0, length);
    const header = parseRequestHeader(request);
    const result = answer(header.opcode, header.nodeId, request.subarray(requestHeaderSize));
    if (result === null) continue;
    sendReply(device, typeof result === "number" ? encodeReply(header.unique, result) : encodeReply(header.unique, 0, result), logger);
  }
}

// struct io_uring_params, struct io_uring_sqe (128-byte with SQE128) and the FUSE ring
// entry (struct fuse_uring_req_header: in_out[128], op_in[128], fuse_uring_ent_in_out) offsets.
const setupSqe128 = 1 << 10;
const offSqes = 0x10000000;
const opUringCmd = 46;
const enterGetEvents = 1;
const cmdRegister = 1;
const cmdCommitAndFetch = 2;
const headerBytes = 288;
const opInOffset = 128;
const payloadSizeOffset = 256 + 16;
const iovecOffset = 1024;
const payloadOffset = 4096;
const entryBytes = payloadOffset + maxWrite;

/**
 * Serves the FUSE queues `queues` from one io_uring: `entriesPerQueue` ring entries each,
 * registered, then each answered and handed back for the next request in one COMMIT_AND_FETCH.
 * `looking`: after replying, look for the next request for spinMs before sleeping; not for
 * a queue served on its readers' own CPU, where the look would take that CPU from them.
 */
function serveUring(fd: number, queues: number[], entriesPerQueue: number, looking: boolean, announce: boolean): never {
  const params = new Uint8Array(120);
  const paramsView = new DataView(params.buffer);
  paramsView.setUint32(8, setupSqe128, true);
  const entries = queues.length * entriesPerQueue;
  const ringFd = Number(ioUringSetup(sysIoUringSetup, Math.max(8, entries * 2), params));
  if (ringFd < 0) throw new Error(`io_uring_setup failed (errno ${koffi.errno()})`);
  const sqEntries = paramsView.getUint32(0, true);
  const cqEntries = paramsView.getUint32(4, true);
  const sqOffsets = { head: paramsView.getUint32(40, true), tail: paramsView.getUint32(44, true), mask: paramsView.getUint32(48, true), array: paramsView.getUint32(64, true) };
  const cqOffsets = { head: paramsView.getUint32(80, true), tail: paramsView.getUint32(84, true), mask: paramsView.getUint32(88, true), cqes: paramsView.getUint32(100, true) };
  // IORING_FEAT_SINGLE_MMAP (every kernel with FUSE over io_uring has it): one mapping holds both rings.
  const ringBytes = Math.max(sqOffsets.array + sqEntries * 4, cqOffsets.cqes + cqEntries * 16);
  const shared = 0x01;
  const populate = 0x8000;
  const readWrite = 0x3;
  const ring = koffi.view(mmap(null, ringBytes, readWrite, shared | populate, ringFd, 0), ringBytes);
  const ringWords = new Uint32Array(ring);
  const ringView = new DataView(ring);
  const sqMask = ringWords[sqOffsets.mask >> 2];
  const cqMask = ringWords[cqOffsets.mask >> 2];
  const sqes = new DataView(koffi.view(mmap(null, sqEntries * 128, readWrite, shared | populate, ringFd, offSqes), sqEntries * 128));
  const sqeBytes = new Uint8Array(sqes.buffer);
  const privateAnonymous = 0x02 | 0x20;
  const memoryPointer = mmap(null, entries * entryBytes, readWrite, privateAnonymous | populate, -1, 0);
  const memoryAddress = BigInt(koffi.address(memoryPointer));
  const memory = new Uint8Array(koffi.view(memoryPointer, entries * entryBytes));
  const memoryView = new DataView(memory.buffer);
  let unsubmitted = 0;

  const queueSqe = (entry: number, command: number, commitId: bigint): void => {
    const tail = ringWords[sqOffsets.tail >> 2];
    const index = tail & sqMask;
    const at = index * 128;
    sqeBytes.fill(0, at, at + 128);
    sqes.setUint8(at, opUringCmd);
    sqes.setInt32(at + 4, fd, true);
    sqes.setUint32(at + 8, command, true); // cmd_op
    sqes.setBigUint64(at + 16, memoryAddress + BigInt(entry * entryBytes + iovecOffset), true); // the entry's two iovecs
    sqes.setUint32(at + 24, 2, true);
    sqes.setBigUint64(at + 32, BigInt(entry), true); // user_data
    sqes.setBigUint64(at + 48 + 8, commitId, true); // struct fuse_uring_cmd_req in the SQE's command area
    sqes.setUint16(at + 48 + 16, queues[entry % queues.length], true);
    ringWords[(sqOffsets.array >> 2) + index] = index;
    Atomics.store(ringWords, sqOffsets.tail >> 2, tail + 1);
    unsubmitted++;
  };

  for (let entry = 0; entry < entries; entry++) {
    const base = entry * entryBytes;
    memoryView.setBigUint64(base + iovecOffset, memoryAddress + BigInt(base), true);
    memoryView.setBigUint64(base + iovecOffset + 8, BigInt(headerBytes), true);
    memoryView.setBigUint64(base + iovecOffset + 16, memoryAddress + BigInt(base + payloadOffset), true);
    memoryView.setBigUint64(base + iovecOffset + 24, BigInt(maxWrite), true);
    queueSqe(entry, cmdRegister, 0n);
  }
  const submitted = Number(ioUringEnter(sysIoUringEnter, ringFd, unsubmitted, 0, 0, null, 0));
  if (submitted !== unsubmitted) throw new Error(`registering ${unsubmitted} ring entries submitted ${submitted} (errno ${koffi.errno()})`);
  unsubmitted = 0;
  if (announce) process.stdout.write("ready\n");

  for (;;) {
    // The replies go in first; if the next request then shows up within spinMs, no sleep.
    const replied = looking && unsubmitted > 0;
    const entered = Number(ioUringEnter(sysIoUringEnter, ringFd, unsubmitted, replied ? 0 : 1, replied ? 0 : enterGetEvents, null, 0));
    if (entered < 0) {
      const errno = koffi.errno();
      if (errno === 4) continue; // EINTR
      throw new Error(`io_uring_enter failed (errno ${errno})`);
    }
    unsubmitted -= entered;
    const completions = { ready: () => Atomics.load(ringWords, cqOffsets.tail >> 2) !== ringWords[cqOffsets.head >> 2] };
    if (replied && !requestDueSoon(completions)) continue;
    let head = ringWords[cqOffsets.head >> 2];
    const tail = Atomics.load(ringWords, cqOffsets.tail >> 2);
    for (; head !== tail; head++) {
      const cqe = cqOffsets.cqes + (head & cqMask) * 16;
      const entry = Number(ringView.getBigUint64(cqe, true));
      const result = ringView.getInt32(cqe + 8, true);
      if (result !== 0) throw new Error(`ring entry ${entry} completed with errno ${-result}`);
      const base = entry * entryBytes;
      const op = memoryView.getUint32(base + 4, true);
      const unique = memoryView.getBigUint64(base + 8, true);
      const nodeId = Number(memoryView.getBigUint64(base + 16, true));
      const payloadSize = memoryView.getUint32(base + payloadSizeOffset, true);
      // The per-opcode header sits in op_in; the rest (LOOKUP's name) in the payload.
      const body = op === opcode.LOOKUP ? memory.subarray(base + payloadOffset, base + payloadOffset + payloadSize) : memory.subarray(base + opInOffset, base + opInOffset + 128);
      const reply = answer(op, nodeId, body);
      const replyBody = reply instanceof Uint8Array ? reply : undefined;
      memoryView.setUint32(base, 16, true);
      memoryView.setInt32(base + 4, typeof reply === "number" ? -reply : 0, true);
      memoryView.setBigUint64(base + 8, unique, true);
      if (replyBody !== undefined) memory.set(replyBody, base + payloadOffset);
      memoryView.setUint32(base + payloadSizeOffset, replyBody?.byteLength ?? 0, true);
      queueSqe(entry, cmdCommitAndFetch, unique);
    }
    Atomics.store(ringWords, cqOffsets.head >> 2, head);
  }
}

const entriesPerQueue = 2;
const [mode, mountpoint, queueArgument] = process.argv.slice(2);
if (mode === "uring-queue") {
  // A child of uring-per-cpu: the connection is on fd 3, its queue is its CPU.
  const queue = Number(queueArgument);
  pinToCpu(queue);
  serveUring(3, [queue], entriesPerQueue, false, false);
}
if (!["device", "device-looking", "uring-one-thread", "uring-per-cpu"].includes(mode) || mountpoint === undefined) {
  throw new Error("usage: node bench/transport-server.ts <device|device-looking|uring-one-thread|uring-per-cpu> <mountpoint>");
}
const fd = openFuseDevice();
await mountFuse(fd, mountpoint);
initialize(fd, mode.startsWith("uring"));
if (mode === "device" || mode === "device-looking") serveDevice(fd, mode === "device-looking");
// The kernel makes a queue per possible CPU and serves none until each has an entry.
const possible = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
if (possible !== readFileSync("/sys/devices/system/cpu/online", "utf8").trim()) throw new Error(`CPUs ${possible} are possible but not all online: no thread could serve an offline CPU's queue`);
if (!/^0(-\d+)?$/.test(possible)) throw new Error(`possible CPUs ${possible}: this bench knows only a range from 0`);
const allQueues = Array.from({ length: Number(possible.split("-").at(-1)) + 1 }, (_, cpu) => cpu);
if (mode === "uring-one-thread") serveUring(fd, allQueues, entriesPerQueue, true, true);
for (const queue of allQueues.slice(1)) {
  spawn(process.execPath, [process.argv[1], "uring-queue", mountpoint, String(queue)], { stdio: ["ignore", "inherit", "inherit", fd] });
}
pinToCpu(0);
serveUring(fd, [0], entriesPerQueue, false, true);

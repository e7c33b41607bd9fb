/** A cgroup's block I/O per device, from v1 blkio (recursive counters) or v2 io.stat. */

import { readdirSync } from "node:fs";
import type { CgroupLayout } from "./layout.ts";
import { readOptionalFile, readRequiredFile } from "../../core/optional-file.ts";
import { locateCgroupChain, type CgroupPaths } from "./files.ts";

export interface DeviceIo {
  readOps: number;
  writeOps: number;
  readBytes: number;
  writeBytes: number;
  discardOps: number;
  discardBytes: number;
  readMerged: number;
  writeMerged: number;
  /** Milliseconds spent on reads/writes, where the kernel keeps it (v1 with CFQ/BFQ). */
  readMs: number;
  writeMs: number;
}

/** "major:minor" → counters. */
export type IoSnapshot = ReadonlyMap<string, DeviceIo>;

/** Throws an ENOENT error when the cgroup does not exist. */
export function readIoSnapshot(layout: CgroupLayout, cgroup: CgroupPaths): IoSnapshot {
  // On a v2 host this resolves to the unified hierarchy, where the controller is called "io".
  const located = locateCgroupChain(layout, "blkio", cgroup);
  if (located === undefined) throw new Error("no blkio/io cgroup hierarchy holds this cgroup");
  const dir = located.chain[0];
  if (located.version === 2) {
    const text = readOptionalFile(`${dir}/io.stat`);
    return text === undefined ? noIoAccounting(dir) : parseIoStat(text);
  }
  return readBlkio(dir);
}

export function emptyDeviceIo(): DeviceIo {
  return { readOps: 0, writeOps: 0, readBytes: 0, writeBytes: 0, discardOps: 0, discardBytes: 0, readMerged: 0, writeMerged: 0, readMs: 0, writeMs: 0 };
}

/** v2: "8:0 rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…" per device. */
export function parseIoStat(text: string): Map<string, DeviceIo> {
  const devices = new Map<string, DeviceIo>();
  for (const line of text.split("\n")) {
    const [device, ...pairs] = line.trim().split(/\s+/);
    if (!/^\d+:\d+$/.test(device ?? "")) continue;
    const io = emptyDeviceIo();
    for (const pair of pairs) {
      const [key, value] = pair.split("=");
      const number = Number(value);
      if (!Number.isFinite(number)) continue;
      if (key === "rbytes") io.readBytes = number;
      else if (key === "wbytes") io.writeBytes = number;
      else if (key === "rios") io.readOps = number;
      else if (key === "wios") io.writeOps = number;
      else if (key === "dbytes") io.discardBytes = number;
      else if (key === "dios") io.discardOps = number;
    }
    devices.set(device, io);
  }
  return devices;
}

/**
 * v1 keeps ops and bytes in the throttle files (present with any I/O scheduler) and merges
 * and times only with CFQ/BFQ; every file is "major:minor Read|Write|Sync|Async|Discard|Total value".
 */
function readBlkio(dir: string): Map<string, DeviceIo> {
  // Which of these files exist depends on the kernel and the I/O scheduler: one directory
  // listing is cheaper than failing to open the absent ones.
  let present: Set<string>;
  try {
    present = new Set(readdirSync(dir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return noIoAccounting(dir);
    throw error;
  }
  const read = (...names: string[]): Map<string, Map<string, number>> | undefined => {
    const name = names.find((candidate) => present.has(candidate));
    const text = name === undefined ? undefined : readOptionalFile(`${dir}/${name}`);
    return text === undefined ? undefined : parseBlkioFile(text);
  };
  const ops = read("blkio.throttle.io_serviced_recursive", "blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive");
  if (ops === undefined) return noIoAccounting(dir);
  const bytes = read("blkio.throttle.io_service_bytes_recursive", "blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive");
  const merged = read("blkio.io_merged_recursive", "blkio.bfq.io_merged_recursive");
  const serviceNs = read("blkio.io_service_time_recursive", "blkio.bfq.io_service_time_recursive");
  const waitNs = read("blkio.io_wait_time_recursive", "blkio.bfq.io_wait_time_recursive");
  const devices = new Map<string, DeviceIo>();
  for (const [device, counters] of ops) {
    const io = emptyDeviceIo();
    const get = (source: Map<string, Map<string, number>> | undefined, op: string): number => source?.get(device)?.get(op) ?? 0;
    io.readOps = get(ops, "Read");
    io.writeOps = get(ops, "Write");
    io.discardOps = counters.get("Discard") ?? 0;
    io.readBytes = get(bytes, "Read");
    io.writeBytes = get(bytes, "Write");
    io.discardBytes = get(bytes, "Discard");
    io.readMerged = get(merged, "Read");
    io.writeMerged = get(merged, "Write");
    io.readMs = Math.floor((get(serviceNs, "Read") + get(waitNs, "Read")) / 1e6);
    io.writeMs = Math.floor((get(serviceNs, "Write") + get(waitNs, "Write")) / 1e6);
    devices.set(device, io);
  }
  return devices;
}

export function parseBlkioFile(text: string): Map<string, Map<string, number>> {
  const devices = new Map<string, Map<string, number>>();
  for (const line of text.split("\n")) {
    const match = /^(\d+:\d+) (\w+) (\d+)$/.exec(line.trim());
    if (!match) continue;
    let counters = devices.get(match[1]);
    if (counters === undefined) devices.set(match[1], (counters = new Map()));
    counters.set(match[2], Number(match[3]));
  }
  return devices;
}

/** Without the I/O files a live cgroup (the io controller not enabled) has no per-device figures; a gone one is ENOENT. */
function noIoAccounting(dir: string): Map<string, DeviceIo> {
  readRequiredFile(`${dir}/cgroup.procs`);
  return new Map();
}

/**
 * The few shared words through which a request loop's threads coordinate: a start
 * gate (workers block until every tree is built, so a failed start never leaves a
 * worker inside a read), the stop request, how many workers still read, and how many
 * are writing a page-cache store (see deferred-writes.ts) and whether stores are off.
 */

const GATE = 0;
const STOP = 1;
const READING = 2;
const STORING = 3;
const STORES_OFF = 4;
const SPINNING = 5;

export type LoopControl = Int32Array;

export function createLoopControl(): LoopControl {
  return new Int32Array(new SharedArrayBuffer(4 * 6));
}

/**
 * Whether this worker may write a store itself: only while another of the `workers` is
 * left free to answer the READ the store may wait for. endStore() after the write.
 */
export function tryStartStore(control: LoopControl, workers: number): boolean {
  if (Atomics.add(control, STORING, 1) < workers - 1) return true;
  Atomics.sub(control, STORING, 1);
  return false;
}

export function endStore(control: LoopControl): void {
  Atomics.sub(control, STORING, 1);
}

/**
 * Whether this worker may look for the next request before it sleeps: one at a time, so
 * the looking takes at most one CPU from the readers whose requests it waits for.
 * endSpin() after the look.
 */
export function tryStartSpin(control: LoopControl): boolean {
  return Atomics.compareExchange(control, SPINNING, 0, 1) === 0;
}

export function endSpin(control: LoopControl): void {
  Atomics.store(control, SPINNING, 0);
}

/** From now on replies go out without stores: a stopping loop must leave nothing waiting on the pool. */
export function turnStoresOff(control: LoopControl): void {
  Atomics.store(control, STORES_OFF, 1);
}

export function storesOff(control: LoopControl): boolean {
  return Atomics.load(control, STORES_OFF) !== 0;
}

export function openGate(control: LoopControl): void {
  Atomics.store(control, GATE, 1);
  Atomics.notify(control, GATE);
}

export function waitAtGate(control: LoopControl): void {
  Atomics.wait(control, GATE, 0);
}

export function requestStop(control: LoopControl): void {
  Atomics.store(control, STOP, 1);
}

export function stopRequested(control: LoopControl): boolean {
  return Atomics.load(control, STOP) !== 0;
}

export function addReader(control: LoopControl): void {
  Atomics.add(control, READING, 1);
}

/** Called by a worker that will read no more, before it sends its last reply. */
export function removeReader(control: LoopControl): void {
  Atomics.sub(control, READING, 1);
}

export function readersLeft(control: LoopControl): number {
  return Atomics.load(control, READING);
}

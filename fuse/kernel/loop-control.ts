/**
 * The few shared words through which a request loop's threads coordinate: a start
 * gate (workers block until every tree is built, so a failed start never leaves a
 * worker inside a read), the stop request, and how many workers still read.
 */

const GATE = 0;
const STOP = 1;
const READING = 2;

export type LoopControl = Int32Array;

export function createLoopControl(): LoopControl {
  return new Int32Array(new SharedArrayBuffer(4 * 3));
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

/**
 * Bytes received but not yet consumed. Both wire layers (multiplexer frames and ttrpc
 * messages) arrive cut at arbitrary points, so each reads its headers and bodies from
 * such a queue instead of assuming one read is one unit.
 */

export class ByteQueue {
  private chunks: Buffer[] = [];
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.total += chunk.length;
  }

  /** The first `count` bytes without consuming them; `count` must not exceed `length`. */
  peek(count: number): Buffer {
    this.checkCount(count);
    // Empty messages are common (an empty protobuf), and then there may be no chunk at all.
    if (count === 0) return Buffer.alloc(0);
    this.coalesce(count);
    return this.chunks[0].subarray(0, count);
  }

  /** Removes and returns the first `count` bytes; `count` must not exceed `length`. */
  take(count: number): Buffer {
    const bytes = Buffer.from(this.peek(count));
    if (count === 0) return bytes;
    const first = this.chunks[0];
    if (first.length === count) this.chunks.shift();
    else this.chunks[0] = first.subarray(count);
    this.total -= count;
    return bytes;
  }

  private checkCount(count: number): void {
    if (count < 0 || count > this.total) throw new RangeError(`want ${count} bytes, have ${this.total}`);
  }

  /** Joins leading chunks until the first holds `count` bytes; copies only what is needed. */
  private coalesce(count: number): void {
    if (this.chunks[0].length >= count) return;
    let joined = 0;
    let used = 0;
    while (joined < count) joined += this.chunks[used++].length;
    this.chunks.splice(0, used, Buffer.concat(this.chunks.slice(0, used), joined));
  }
}

/**
 * Two independent 32-bit FNV-1a style hashes of a string (non-negative), for tables in
 * shared memory that find entries by hash: two keys sharing a slot are told apart by the pair.
 */
export function hashKey(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193);
    b = Math.imul(b ^ code, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 1, b >>> 1];
}

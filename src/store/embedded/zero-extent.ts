import { MAX_EXTENT } from './extent-reader.js';

const ZEROS = Buffer.alloc(MAX_EXTENT);

/** `n` (≤ 128 KiB) zero bytes, shared: never write into it. */
export function zeros(n: number): Buffer {
  return ZEROS.subarray(0, n);
}

/** True when every byte of `buf` is 0 (memcmp against the shared zeros, 128 KiB at a time). */
export function isZero(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, buf.length - off);
    if (!buf.subarray(off, off + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

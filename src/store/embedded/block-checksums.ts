import { Crc32c } from '../../wire/checksum/crc32c.js';
import { hardwareCrc32c } from '../../net/crc32c-hardware.js';
import { optionalNative } from '../../net/native-addon.js';

/** Checksum granularity of the embedded store: one CRC32C per 4 KiB block of every extent. */
export const CHECKSUM_BLOCK = 4096;

type CrcBlocks = (buffer: Buffer, blockSize: number, out: Uint32Array, outIndex?: number) => Uint32Array;

let tables: Crc32c | undefined;

/**
 * Writes the CRC32C of each 4 KiB block of `data` (a multiple of 4 KiB long) into `out` from
 * `outIndex` on. One native call per buffer (native/crc32c.c crc32cBlocks, SSE4.2) when the
 * addon is built, else the table implementation (same values, ~10x slower).
 */
export function blockChecksums(data: Buffer, out: Uint32Array, outIndex = 0): Uint32Array {
  const fn = optionalNative<CrcBlocks>('crc32cBlocks');
  if (fn) return fn(data, CHECKSUM_BLOCK, out, outIndex);
  tables ??= new Crc32c(hardwareCrc32c());
  for (let i = 0, n = data.length / CHECKSUM_BLOCK; i < n; i++) out[outIndex + i] = tables.of(data.subarray(i * CHECKSUM_BLOCK, (i + 1) * CHECKSUM_BLOCK));
  return out;
}

/** Index of the first block of `data` whose checksum differs from `expected[from + i]`, or -1. Scratch is reused. */
export function firstBadBlock(data: Buffer, expected: Uint32Array, from: number, scratch: Uint32Array): number {
  const n = data.length / CHECKSUM_BLOCK;
  const sums = blockChecksums(data, scratch.length >= n ? scratch : new Uint32Array(n), 0);
  for (let i = 0; i < n; i++) if (sums[i] !== expected[from + i]) return i;
  return -1;
}

import { DisklessError } from '../errors/index.js';

/**
 * The range check every BlockDevice makes before I/O: `length` bytes at `offset` must be
 * whole blocks inside the volume, else STORE_OUT_OF_RANGE naming both and the limits.
 */
export function checkBlockRange(volume: string, size: number, blockSize: number, offset: number, length: number, op: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset % blockSize !== 0 || length % blockSize !== 0 || offset + length > size) {
    throw new DisklessError('STORE_OUT_OF_RANGE', `cannot ${op} ${length} bytes at offset ${offset} of volume ${volume}: size is ${size}, block size ${blockSize}`, {
      volume,
      operation: op,
      offset,
      length,
      size,
      blockSize,
    });
  }
}

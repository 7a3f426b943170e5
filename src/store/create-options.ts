import { open, stat, type FileHandle } from 'node:fs/promises';
import { DisklessError } from '../errors/index.js';
import type { CreateVolumeOptions } from './storage-driver.js';
import { assertVolumeName } from './volume-name.js';

/** Default logical block size of new volumes. */
export const DEFAULT_BLOCK_SIZE = 512;
/** Import copy unit, and the grain below which zeros are still written (sparse imports). */
const IMPORT_CHUNK = 1024 * 1024;
const SPARSE_GRAIN = 4096;

/** A `create` request checked and completed: block size and size decided, the source's size known. */
export interface ResolvedCreate {
  readonly blockSize: 512 | 4096;
  readonly size: number;
  /** Bytes of `options.from` (0 without it). */
  readonly sourceSize: number;
}

/**
 * The checks every driver's `create` makes before touching anything: the name, the block
 * size (512 or 4096), the import source (a regular file, else STORE_NOT_FOUND), and the size
 * (default: the source rounded up to a block; a positive multiple of the block size, at least
 * the source, at most `maxSize`), each failure naming the field, value and what is allowed.
 */
export async function resolveCreate(name: string, options: CreateVolumeOptions, maxSize = Number.MAX_SAFE_INTEGER): Promise<ResolvedCreate> {
  assertVolumeName(name);
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (blockSize !== 512 && blockSize !== 4096) {
    throw new DisklessError('STORE_INVALID_SIZE', `cannot create volume ${name}: block size ${String(blockSize)} is not 512 or 4096`, { field: 'blockSize', value: blockSize, allowed: [512, 4096] });
  }
  let sourceSize = 0;
  if (options.from !== undefined) {
    try {
      const st = await stat(options.from);
      if (!st.isFile()) throw new Error('not a regular file');
      sourceSize = st.size;
    } catch (err) {
      throw new DisklessError('STORE_NOT_FOUND', `cannot import ${options.from} into volume ${name}: ${(err as Error).message}`, { field: 'from', value: options.from }, { cause: err });
    }
  }
  const size = options.size ?? Math.max(blockSize, Math.ceil(sourceSize / blockSize) * blockSize);
  if (!Number.isSafeInteger(size) || size <= 0 || size % blockSize !== 0 || size < sourceSize || size > maxSize) {
    throw new DisklessError('STORE_INVALID_SIZE', `cannot create volume ${name}: size ${size} must be a positive multiple of ${blockSize}${sourceSize ? ` and at least the source's ${sourceSize} bytes` : ''}${maxSize < Number.MAX_SAFE_INTEGER ? `, at most ${maxSize}` : ''}`, {
      field: 'size',
      value: size,
      blockSize,
      sourceSize,
      ...(maxSize < Number.MAX_SAFE_INTEGER ? { maxSize } : {}),
    });
  }
  return { blockSize, size, sourceSize };
}

/** Copies a raw image into `dst`, skipping all-zero 4 KiB grains so they stay holes. */
export async function copySparse(src: string, dst: FileHandle): Promise<void> {
  const fh = await open(src, 'r');
  try {
    const buf = Buffer.allocUnsafe(IMPORT_CHUNK);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, IMPORT_CHUNK, pos);
      if (bytesRead === 0) break;
      for (let g = 0; g < bytesRead; g += SPARSE_GRAIN) {
        const end = Math.min(g + SPARSE_GRAIN, bytesRead);
        if (!isZero(buf, g, end)) await dst.write(buf, g, end - g, pos + g);
      }
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Verifiable data for storage tests. `fillPattern` makes incompressible bytes that depend only
 * on (seed, absolute byte offset), so any range of a volume can be checked without keeping a
 * copy; `stampBlock`/`readStamp` put a self-describing header (magic, batch, LBA, seed, CRC of
 * the block) in every block, so a crash test can tell "old", "new" and "garbage" apart.
 */
import { crc32 } from 'node:zlib';

/** One 32-bit mixing step (a splitmix-style finaliser): good enough to defeat compression and dedup. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Fills `target` with the pattern of `seed` as it would appear at byte `offset` of a volume
 * (offset a multiple of 4). Two different seeds never agree on a 4-byte word except by chance.
 */
export function fillPattern(target: Buffer, offset: number, seed: number): Buffer {
  if (offset % 4 !== 0 || target.length % 4 !== 0) throw new Error(`fillPattern: offset ${offset} and length ${target.length} must be multiples of 4`);
  const base = offset / 4;
  const s = mix32(seed ^ 0x9e3779b9);
  for (let i = 0; i < target.length; i += 4) {
    // The word index may exceed 2^32 on large volumes: fold the high part in.
    const w = base + i / 4;
    target.writeUInt32LE(mix32((w >>> 0) ^ s ^ mix32(Math.floor(w / 0x100000000) + s)), i);
  }
  return target;
}

/** A new buffer of `length` pattern bytes for `offset`. */
export function pattern(offset: number, length: number, seed: number): Buffer {
  return fillPattern(Buffer.allocUnsafe(length), offset, seed);
}

/** Index of the first 4-byte word of `data` (read at `offset`) that differs from the pattern, or -1. */
export function firstPatternMismatch(data: Buffer, offset: number, seed: number): number {
  const want = pattern(offset, data.length, seed);
  if (want.equals(data)) return -1;
  for (let i = 0; i < data.length; i += 4) if (want.readUInt32LE(i) !== data.readUInt32LE(i)) return i;
  return -1;
}

/** "DLCT": the magic that starts every stamped block. */
export const STAMP_MAGIC = 0x444c4354;
/** Header bytes at the start of a stamped block: magic, seed, batch, LBA (8), CRC-32 of the rest. */
const STAMP_HEADER = 24;

/** What a stamped block says about itself. */
export interface BlockStamp {
  readonly seed: number;
  readonly batch: number;
  readonly lba: number;
}

/**
 * Writes a self-checking block into `target` (its whole length is one block): header
 * {magic, seed, batch, lba, crc} and a body of pattern bytes for (seed ^ batch, lba). The CRC
 * covers everything after it, so a torn or flipped block reads back as garbage.
 */
export function stampBlock(target: Buffer, stamp: BlockStamp): Buffer {
  target.writeUInt32LE(STAMP_MAGIC, 0);
  target.writeUInt32LE(stamp.seed >>> 0, 4);
  target.writeUInt32LE(stamp.batch >>> 0, 8);
  target.writeUInt32LE(stamp.lba % 0x100000000, 12);
  target.writeUInt32LE(Math.floor(stamp.lba / 0x100000000), 16);
  fillPattern(target.subarray(STAMP_HEADER), 0, mix32(stamp.seed ^ mix32(stamp.batch)) ^ stamp.lba);
  target.writeUInt32LE(0, 20);
  target.writeUInt32LE((crc32(target.subarray(STAMP_HEADER)) ^ crc32(target.subarray(0, 20))) >>> 0, 20);
  return target;
}

/**
 * Reads a block written by `stampBlock`: the stamp, 'zero' for an all-zero (never written)
 * block, or 'garbage' for anything else (bad magic, CRC or body).
 */
export function readStamp(block: Buffer): BlockStamp | 'zero' | 'garbage' {
  if (block.readUInt32LE(0) !== STAMP_MAGIC) return block.every((b) => b === 0) ? 'zero' : 'garbage';
  const crc = block.readUInt32LE(20);
  const copy = Buffer.from(block.subarray(0, 24));
  copy.writeUInt32LE(0, 20);
  if ((crc32(block.subarray(STAMP_HEADER)) ^ crc32(copy.subarray(0, 20))) >>> 0 !== crc) return 'garbage';
  const stamp = { seed: block.readUInt32LE(4), batch: block.readUInt32LE(8), lba: block.readUInt32LE(12) + block.readUInt32LE(16) * 0x100000000 };
  const expect = stampBlock(Buffer.alloc(block.length), stamp);
  return expect.equals(block) ? stamp : 'garbage';
}

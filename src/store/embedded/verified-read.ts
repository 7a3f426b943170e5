import { optionalNative } from '../../net/native-addon.js';
import { cachedPrefix, UNSUPPORTED as NO_WAIT_UNSUPPORTED, type PreadNoWait } from '../../net/pread-no-wait.js';
import { blockChecksums, CHECKSUM_BLOCK } from './block-checksums.js';

/**
 * The embedded store's synchronous read: fills target[start, end) with the file's bytes at
 * `position` only if every 4 KiB block covering them is in the page cache, and writes the
 * CRC32C of each covering block (first to last) into `scratch.crcs`. Returns the number of
 * covering blocks, NOT_CACHED (also at end of file or on a read error: the caller's ordinary
 * read reports those) or UNSUPPORTED (the file system refuses RWF_NOWAIT: stop trying on this
 * file). The caller compares the checksums (`sumsMatch`): a range may span several extents
 * whose slots lie one after another, each with its own expected checksums. target may hold
 * part of the data after a negative result.
 */
export type ReadBlocks = (fd: number, position: number, target: Buffer, start: number, end: number, scratch: VerifyScratch) => number;

/** Working memory of a ReadBlocks caller (one per file: the reads run on the JS thread). */
export interface VerifyScratch {
  /** Edge blocks, then the covering blocks' checksums (native, 4-byte aligned: its own memory, never a slice of Node's pool). */
  readonly bytes: Buffer;
  /** The checksums part of `bytes`. */
  readonly crcs: Uint32Array;
}

export const NOT_CACHED = -1;
export const UNSUPPORTED = -2;

/** Covering blocks one ReadBlocks call may have: 1 MiB, and one more for a range not aligned to 4 KiB. */
export const MAX_READ_BLOCKS = 257;

/** Bytes `scratch` must hold: two edge blocks, then one checksum per covering block. */
export const SCRATCH_BYTES = 2 * CHECKSUM_BLOCK + 4 * MAX_READ_BLOCKS;

export function verifyScratch(): VerifyScratch {
  const bytes = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  return { bytes, crcs: new Uint32Array(bytes.buffer, bytes.byteOffset + 2 * CHECKSUM_BLOCK, MAX_READ_BLOCKS) };
}

/** True when crcs[from, from + n) equal sums[sumIndex, sumIndex + n). */
export function sumsMatch(crcs: Uint32Array, from: number, n: number, sums: Uint32Array, sumIndex: number): boolean {
  for (let i = 0; i < n; i++) if (crcs[from + i] !== sums[sumIndex + i]) return false;
  return true;
}

/** native/verified_read.c: see there. Returns the covering block count, -1 or -2. */
type NativeReadBlocks = (fd: number, position: number, target: Buffer, start: number, end: number, scratch: Buffer) => number;

/**
 * The native ReadBlocks: one call reads the covering blocks (one preadv2 RWF_NOWAIT) and
 * checksums them (a cached 4 KiB read cost twice its kernel time in call overhead, views and
 * copies when done in JS); the comparison with the expected sums stays in JS, where reading a
 * typed array is cheap. Undefined without the addon or SSE4.2.
 */
export function nativeReadBlocks(): ReadBlocks | undefined {
  const read = optionalNative<NativeReadBlocks>('readBlocksNoWait');
  if (!read) return undefined;
  return (fd, position, target, start, end, scratch) => read(fd, position, target, start, end, scratch.bytes);
}

/**
 * The same contract in JS over `preadNoWait` (for a CPU without SSE4.2, where the addon
 * leaves readBlocksNoWait out): reads the covering blocks, checksums them, copies the range out.
 */
export function composedReadBlocks(pread: PreadNoWait): ReadBlocks {
  return (fd, position, target, start, end, scratch) => {
    const B = CHECKSUM_BLOCK;
    const head = position % B;
    const coverLength = Math.ceil((head + end - start) / B) * B;
    if (end <= start || coverLength / B > MAX_READ_BLOCKS) throw new RangeError(`readBlocks: ${end - start} bytes at ${position}: the range must be non-empty and have at most ${MAX_READ_BLOCKS} covering 4 KiB blocks`);
    const aligned = head === 0 && coverLength === end - start;
    const cover = aligned ? target.subarray(start, end) : Buffer.allocUnsafe(coverLength);
    const done = cachedPrefix(pread, fd, cover, position - head);
    if (done === NO_WAIT_UNSUPPORTED) return UNSUPPORTED;
    if (done !== cover.length) return NOT_CACHED;
    blockChecksums(cover, scratch.crcs, 0);
    if (!aligned) cover.copy(target, start, head, head + end - start);
    return coverLength / B;
  };
}

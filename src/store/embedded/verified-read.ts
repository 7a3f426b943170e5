import { loadNativeAddon } from '../../net/native-addon.js';
import { cachedPrefix, UNSUPPORTED as NO_WAIT_UNSUPPORTED, type PreadNoWait } from '../../net/pread-no-wait.js';
import { CHECKSUM_BLOCK, firstBadBlock } from './block-checksums.js';
import { MAX_EXTENT } from './extent-reader.js';

/**
 * The embedded store's synchronous read: fills target[start, end) with the file's bytes at
 * `position` only if every 4 KiB block covering them is in the page cache and matches its
 * CRC32C in sums[sumIndex + i] (i counts covering blocks from the first). `scratch` (from
 * verifyScratch) takes the edge blocks and the checksums; the range lies within one extent. Returns VERIFIED, NOT_CACHED
 * (also at end of file or on a read error: the caller's ordinary read reports those),
 * UNSUPPORTED (the file system refuses RWF_NOWAIT: stop trying on this file) or MISMATCH (the
 * caller's ordinary read repairs the block or fails). target may hold part of the data after
 * anything but VERIFIED.
 */
export type ReadVerified = (fd: number, position: number, target: Buffer, start: number, end: number, sums: Uint32Array, sumIndex: number, scratch: VerifyScratch) => number;

/** Working memory of a ReadVerified caller (one per file: the reads run on the JS thread). */
export interface VerifyScratch {
  /** Edge blocks, then the covering blocks' checksums (native, 4-byte aligned: its own memory, never a slice of Node's pool). */
  readonly bytes: Buffer;
  /** The checksums part of `bytes`. */
  readonly crcs: Uint32Array;
}

export const VERIFIED = 0;
export const NOT_CACHED = -1;
export const UNSUPPORTED = -2;
export const MISMATCH = -3;

/** Bytes `scratch` must hold: two edge blocks, then one checksum per covering block of a range within one extent. */
export const SCRATCH_BYTES = 2 * CHECKSUM_BLOCK + 4 * (MAX_EXTENT / CHECKSUM_BLOCK + 1);

export function verifyScratch(): VerifyScratch {
  const bytes = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  return { bytes, crcs: new Uint32Array(bytes.buffer, bytes.byteOffset + 2 * CHECKSUM_BLOCK, (SCRATCH_BYTES - 2 * CHECKSUM_BLOCK) / 4) };
}

/** native/verified_read.c: see there. Returns the covering block count, -1 or -2. */
type ReadBlocksNoWait = (fd: number, position: number, target: Buffer, start: number, end: number, scratch: Buffer) => number;

let native: ReadBlocksNoWait | null | undefined;

function nativeReadBlocks(): ReadBlocksNoWait | undefined {
  if (native === undefined) {
    try {
      native = loadNativeAddon<{ readBlocksNoWait?: ReadBlocksNoWait }>().readBlocksNoWait ?? null;
    } catch {
      native = null;
    }
  }
  return native ?? undefined;
}

/**
 * The native ReadVerified: one call reads the covering blocks (one preadv2 RWF_NOWAIT) and
 * checksums them (a cached 4 KiB read cost twice its kernel time in call overhead, views and
 * copies when done in JS); the comparison with `sums` stays here, where reading a typed array
 * is cheap. Undefined without the addon or SSE4.2.
 */
export function nativeReadVerified(): ReadVerified | undefined {
  const read = nativeReadBlocks();
  if (!read) return undefined;
  return (fd, position, target, start, end, sums, sumIndex, scratch) => {
    const n = read(fd, position, target, start, end, scratch.bytes);
    if (n < 0) return n === -2 ? UNSUPPORTED : NOT_CACHED;
    const crcs = scratch.crcs;
    for (let i = 0; i < n; i++) if (crcs[i] !== sums[sumIndex + i]) return MISMATCH;
    return VERIFIED;
  };
}

/**
 * The same contract in JS over `preadNoWait` (for a CPU without SSE4.2, where the addon
 * leaves readVerified out): reads the covering blocks, checks them, copies the range out.
 */
export function composedReadVerified(pread: PreadNoWait): ReadVerified {
  const sumsScratch = new Uint32Array(64);
  return (fd, position, target, start, end, sums, sumIndex) => {
    const B = CHECKSUM_BLOCK;
    const head = position % B;
    const coverLength = Math.ceil((head + end - start) / B) * B;
    const aligned = head === 0 && coverLength === end - start;
    const cover = aligned ? target.subarray(start, end) : Buffer.allocUnsafe(coverLength);
    const done = cachedPrefix(pread, fd, cover, position - head);
    if (done === NO_WAIT_UNSUPPORTED) return UNSUPPORTED;
    if (done !== cover.length) return NOT_CACHED;
    if (firstBadBlock(cover, sums, sumIndex, sumsScratch) >= 0) return MISMATCH;
    if (!aligned) cover.copy(target, start, head, head + end - start);
    return VERIFIED;
  };
}

import { DisklessError } from '../../errors/index.js';
import { blockChecksums, CHECKSUM_BLOCK, firstBadBlock } from './block-checksums.js';
import { ZERO_SLOT, type ExtentEntry } from './extent-entry.js';
import type { ExtentIo } from './extent-files.js';
import type { ExtentLocks } from './extent-locks.js';
import type { Hit } from './pool-records.js';
import { settleAll } from './settle-all.js';

/** Largest extent the pool allows (sizes scratch buffers). */
export const MAX_EXTENT = 128 * 1024;

/** What the reader needs from its pool. */
export interface ReaderPool {
  readonly extentSize: number;
  readonly blocksPerExtent: number;
  readonly files: ExtentIo;
  readonly locks: ExtentLocks;
  /** False once the pool failed or closed. */
  readonly usable: boolean;
  lookup(id: number, index: number): Hit | undefined;
  checkHealthy(): void;
}

/**
 * The pool's read side: resolves extents through the layer chain, verifies every 4 KiB
 * block's CRC32C, heals a bad block from the mirror (rewriting the bad copy) and fails with
 * STORE_CORRUPT when no good copy exists. Also gives the write path an old extent to copy.
 */
export class ExtentReader {
  private readonly scratch = new Uint32Array(MAX_EXTENT / CHECKSUM_BLOCK);
  /** Covering blocks of an unaligned read on the synchronous path (never held across an await). */
  private readonly cover = Buffer.allocUnsafe(MAX_EXTENT);

  constructor(private readonly pool: ReaderPool) {}

  /** Index of the first block of `data` whose checksum differs from `sums[from + i]`, or -1. */
  firstBad(data: Buffer, sums: Uint32Array, from: number): number {
    return firstBadBlock(data, sums, from, this.scratch);
  }

  /**
   * The fast path of a read: fills `target` on this thread when every extent is a hole or
   * data whose covering 4 KiB blocks are cached and whose checksums match. Returns false —
   * possibly after filling part of `target` — when the async path must do it (a cache miss,
   * a checksum to repair). Saves the promise chain per extent: about a
   * third of the per-command cost of a cached 4 KiB read.
   */
  readRangeSync(view: number, offset: number, target: Buffer): boolean {
    const files = this.pool.files;
    if (!files.readCached || !this.pool.usable) return false;
    const E = this.pool.extentSize;
    const B = CHECKSUM_BLOCK;
    const end = offset + target.length;
    for (let pos = offset; pos < end; ) {
      const index = Math.floor(pos / E);
      const start = pos - index * E;
      const stop = Math.min(E, start + (end - pos));
      const t = pos - offset;
      const hit = this.pool.lookup(view, index);
      if (!hit || hit.entry.slot === ZERO_SLOT) target.fill(0, t, t + (stop - start));
      else if (start % B === 0 && stop % B === 0) {
        const dst = target.subarray(t, t + (stop - start));
        if (!files.readCached(hit.entry.slot * E + start, dst)) return false;
        if (this.firstBad(dst, hit.entry.sums!, start / B) >= 0) return false;
      } else {
        // Not 4 KiB-aligned (512-byte LBAs): read and verify the covering blocks, copy out the part asked for.
        const bFirst = Math.floor(start / B);
        const cover = this.cover.subarray(0, (Math.ceil(stop / B) - bFirst) * B);
        if (!files.readCached(hit.entry.slot * E + bFirst * B, cover)) return false;
        if (this.firstBad(cover, hit.entry.sums!, bFirst) >= 0) return false;
        cover.copy(target, t, start - bFirst * B, stop - bFirst * B);
      }
      pos += stop - start;
    }
    return true;
  }

  /** Fills `target` with the bytes at `offset` of the view from layer `view()` down (re-evaluated per extent). */
  async readRange(view: () => number, offset: number, target: Buffer, volume: string): Promise<void> {
    this.pool.checkHealthy();
    const E = this.pool.extentSize;
    const end = offset + target.length;
    const jobs: Promise<void>[] = [];
    for (let pos = offset; pos < end; ) {
      const index = Math.floor(pos / E);
      const start = pos - index * E;
      const stop = Math.min(E, start + (end - pos));
      jobs.push(this.readExtent(view, index, start, stop, target, pos - offset, volume));
      pos += stop - start;
    }
    if (jobs.length === 1) return jobs[0];
    await settleAll(jobs);
  }

  private async readExtent(view: () => number, index: number, start: number, stop: number, target: Buffer, tOff: number, volume: string): Promise<void> {
    const B = CHECKSUM_BLOCK;
    const bFirst = Math.floor(start / B);
    const bEnd = Math.ceil(stop / B);
    const aligned = start % B === 0 && stop % B === 0;
    for (let attempt = 0; ; attempt++) {
      const hit = this.pool.lookup(view(), index);
      if (!hit || hit.entry.slot === ZERO_SLOT) {
        target.fill(0, tOff, tOff + (stop - start));
        return;
      }
      const dst = aligned ? target.subarray(tOff, tOff + (stop - start)) : Buffer.allocUnsafe((bEnd - bFirst) * B);
      await this.pool.files.read('primary', hit.entry.slot * this.pool.extentSize + bFirst * B, dst);
      if (this.firstBad(dst, hit.entry.sums!, bFirst) >= 0) {
        const done = await this.repair(hit, index, bFirst, dst, volume, attempt < 3);
        if (!done) continue; // the extent changed under the read: read it again
      }
      if (!aligned) dst.copy(target, tOff, start - bFirst * B, stop - bFirst * B);
      return;
    }
  }

  /**
   * A block failed its checksum: under the extent's lock, make sure the entry is still the
   * one read (else return false: the caller re-reads), re-read, and replace each bad block
   * from the mirror, rewriting the bad copy. No good copy: STORE_CORRUPT.
   */
  async repair(hit: Hit, index: number, bFirst: number, dst: Buffer, volume: string, mayRetry: boolean): Promise<boolean> {
    const unlock = await this.pool.locks.lock(hit.layer.id, index);
    try {
      if (mayRetry && (hit.layer.removed || hit.layer.entries?.get(index) !== hit.entry)) return false;
      const B = CHECKSUM_BLOCK;
      const base = hit.entry.slot * this.pool.extentSize;
      await this.pool.files.read('primary', base + bFirst * B, dst);
      const one = Buffer.allocUnsafe(B);
      for (let i = 0; i < dst.length / B; i++) {
        const block = dst.subarray(i * B, (i + 1) * B);
        if (this.firstBad(block, hit.entry.sums!, bFirst + i) < 0) continue;
        let healed = false;
        if (this.pool.files.mirrored) {
          await this.pool.files.read('mirror', base + (bFirst + i) * B, one);
          if (this.firstBad(one, hit.entry.sums!, bFirst + i) < 0) {
            one.copy(block);
            await this.pool.files.write(base + (bFirst + i) * B, one, 'primary');
            healed = true;
          }
        }
        if (!healed) {
          const offset = index * this.pool.extentSize + (bFirst + i) * B;
          throw new DisklessError('STORE_CORRUPT', `volume ${volume}: the 4 KiB block at byte ${offset} failed its checksum${this.pool.files.mirrored ? ' on both copies' : ' and the pool has no mirror'}`, {
            volume,
            offset,
            slot: hit.entry.slot,
            block: bFirst + i,
            mirrored: this.pool.files.mirrored,
          });
        }
      }
      return true;
    } finally {
      unlock();
    }
  }

  /** Whole extent of `entry` into `extent`; returns the blocks with no good copy (their bytes are copied as they are). */
  async readForCopy(entry: ExtentEntry, extent: Buffer): Promise<number[]> {
    await this.pool.files.read('primary', entry.slot * this.pool.extentSize, extent);
    const sums = blockChecksums(extent, new Uint32Array(this.pool.blocksPerExtent));
    const bad: number[] = [];
    for (let b = 0; b < this.pool.blocksPerExtent; b++) {
      if (sums[b] === entry.sums![b]) continue;
      const block = extent.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK);
      if (this.pool.files.mirrored) {
        const one = Buffer.allocUnsafe(CHECKSUM_BLOCK);
        await this.pool.files.read('mirror', entry.slot * this.pool.extentSize + b * CHECKSUM_BLOCK, one);
        if (this.firstBad(one, entry.sums!, b) < 0) {
          one.copy(block);
          continue;
        }
      }
      bad.push(b);
    }
    return bad;
  }
}

import { blockChecksums, CHECKSUM_BLOCK } from './block-checksums.js';
import { blockRangeMask, forEachRun, missingBlocks, ZERO_SLOT, type ExtentEntry } from './extent-entry.js';
import type { ExtentIo } from './extent-files.js';
import { MAX_EXTENT, type ExtentReader } from './extent-reader.js';
import type { Hit, Layer, PoolRecord } from './pool-records.js';
import { settleAll } from './settle-all.js';
import { accountWrite } from './space-accounting.js';
import { isZero } from './zero-extent.js';

/** What the writer needs from its pool. */
export interface WriterPool {
  readonly extentSize: number;
  readonly blocksPerExtent: number;
  readonly fullMask: number;
  readonly files: ExtentIo;
  readonly record: PoolRecord;
  entriesOf(layer: Layer): Map<number, ExtentEntry>;
  lookup(id: number, index: number): Hit | undefined;
  allocate(prefer?: number): number;
  unallocate(slot: number): void;
  releaseSlot(slot: number): void;
  markDirty(layer: number, index: number): void;
  touchLayer(layer: Layer): void;
}

/**
 * The pool's write side, one extent at a time, called with the extent's lock held and inside
 * the write gate. Copy-on-write is per 4 KiB block: an entry's slot holds only the blocks
 * written in its layer, so a clone's first small write stores that write, not the extent.
 * A block that committed metadata does not reference yet (outside the entry's `stable` mask)
 * is written in place; writing a block inside it moves the layer's blocks to a new slot.
 */
export class ExtentWriter {
  /** Extent buffer of the synchronous path (never held across an await). */
  private readonly scratch = Buffer.allocUnsafe(MAX_EXTENT);

  constructor(
    private readonly pool: WriterPool,
    private readonly reader: ExtentReader,
  ) {}

  /** Writes `data` over bytes [start, stop) of extent `index` of layer `head`. */
  async write(head: Layer, index: number, start: number, stop: number, data: Buffer): Promise<void> {
    const pool = this.pool;
    const E = pool.extentSize;
    const B = CHECKSUM_BLOCK;
    const full = pool.fullMask;
    const entries = pool.entriesOf(head);
    const own = entries.get(index);
    const below = (): Hit | undefined => (head.record.parent !== 0 ? pool.lookup(head.record.parent, index) : undefined);
    const bFirst = Math.floor(start / B);
    const bEnd = Math.ceil(stop / B);
    const wmask = blockRangeMask(bFirst, bEnd);

    let next: ExtentEntry | undefined;
    if (start === 0 && stop === E && isZero(data)) {
      // A hole: nothing to store unless data below must be hidden (a tombstone).
      const shown = below();
      const belowVisible = shown !== undefined && shown.entry.slot !== ZERO_SLOT;
      next = belowVisible ? { slot: ZERO_SLOT, mask: full, sums: undefined, txg: pool.record.txg, stable: 0, spare: undefined } : undefined;
      if (own && own.slot !== ZERO_SLOT) pool.releaseSlot(own.slot);
      if (!own && !next) return;
    } else {
      // The whole blocks to store: the data, plus what an unaligned write's edge blocks held.
      let blocks = data;
      if (start % B !== 0 || stop % B !== 0) {
        blocks = Buffer.allocUnsafe((bEnd - bFirst) * B);
        await this.reader.readExtent(() => head.id, index, bFirst * B, bEnd * B, blocks, 0, head.record.owner, head.id);
        data.copy(blocks, start - bFirst * B);
      }
      const ownData = own !== undefined && own.slot !== ZERO_SLOT ? own : undefined;
      if (ownData && (ownData.stable & wmask) === 0) {
        // No committed metadata points at these blocks of the slot: write them in place.
        await pool.files.write(ownData.slot * E + bFirst * B, blocks);
        next = rewritten(ownData, wmask, blocks, bFirst);
      } else {
        next = await this.moveTo(own, wmask, bFirst, blocks);
        if (ownData) pool.releaseSlot(ownData.slot);
      }
    }
    this.settle(head, index, own, below, next);
  }

  /**
   * The synchronous fast path of `write` for whole 4 KiB blocks: in place, or to a new slot
   * with the layer's other blocks of the extent taken from the page cache. False, with nothing
   * changed, when `write` must do it (a tombstone, a hole, a block not cached or failing its
   * checksum, a copy that would not take the write on this thread).
   */
  writeSync(head: Layer, index: number, start: number, stop: number, data: Buffer): boolean {
    const pool = this.pool;
    if (!pool.files.writeSync) return false;
    const E = pool.extentSize;
    const B = CHECKSUM_BLOCK;
    const own = pool.entriesOf(head).get(index);
    if (own?.slot === ZERO_SLOT || (start === 0 && stop === E && isZero(data))) return false;
    const bFirst = start / B;
    const wmask = blockRangeMask(bFirst, stop / B);
    let next: ExtentEntry;
    if (own && (own.stable & wmask) === 0) {
      if (!pool.files.writeSync(own.slot * E + start, data)) return false;
      next = rewritten(own, wmask, data, bFirst);
    } else {
      // A new slot: these blocks, and the layer's other blocks of the extent from the page cache.
      const carry = own ? (own.mask & ~wmask) >>> 0 : 0;
      const extent = this.scratch;
      if (carry !== 0) {
        if (!this.reader.readForCopySync(own!, carry, extent)) return false;
        data.copy(extent, start);
      }
      const slot = pool.allocate(own?.spare);
      let ok = true;
      if (carry === 0) ok = pool.files.writeSync(slot * E + start, data);
      else forEachRun((carry | wmask) >>> 0, pool.blocksPerExtent, (a, b) => (ok &&= pool.files.writeSync!(slot * E + a * B, extent.subarray(a * B, b * B))));
      if (!ok) {
        pool.unallocate(slot);
        return false;
      }
      const sums = own ? own.sums!.slice() : new Uint32Array(pool.blocksPerExtent); // carried blocks verified against their sums
      blockChecksums(data, sums, bFirst);
      next = { slot, mask: ((own?.mask ?? 0) | wmask) >>> 0, sums, txg: pool.record.txg, stable: 0, spare: own?.slot };
      if (own) pool.releaseSlot(own.slot);
    }
    this.settle(head, index, own, () => (head.record.parent !== 0 ? pool.lookup(head.record.parent, index) : undefined), next);
    return true;
  }

  /** Records the extent's new entry (or its removal) and the space counters. */
  private settle(head: Layer, index: number, own: ExtentEntry | undefined, below: () => Hit | undefined, next: ExtentEntry | undefined): void {
    accountWrite(head, own, below, next, this.pool.fullMask, (l) => this.pool.touchLayer(l));
    const entries = this.pool.entriesOf(head);
    if (next) entries.set(index, next);
    else entries.delete(index);
    this.pool.markDirty(head.id, index);
  }

  /**
   * Copy-on-write to a new slot: the blocks the layer already holds (none for a first write
   * over inherited data) and the new `blocks` at block `bFirst`. After a tombstone the new
   * entry holds every block (zeros around the data): nothing below may show through.
   */
  private async moveTo(own: ExtentEntry | undefined, wmask: number, bFirst: number, blocks: Buffer): Promise<ExtentEntry> {
    const pool = this.pool;
    const E = pool.extentSize;
    const B = CHECKSUM_BLOCK;
    const ownData = own !== undefined && own.slot !== ZERO_SLOT ? own : undefined;
    const carry = ownData ? (ownData.mask & ~wmask) >>> 0 : own ? (pool.fullMask & ~wmask) >>> 0 : 0;
    const slot = pool.allocate(ownData?.spare);
    try {
      // Carried blocks keep their checksums: verified (or healed from the mirror) against them,
      // and a block with no good copy stays detectably bad instead of getting a fresh one.
      const sums = ownData ? ownData.sums!.slice() : new Uint32Array(pool.blocksPerExtent);
      let parts: { at: number; buf: Buffer }[] = [{ at: bFirst * B, buf: blocks }];
      if (carry !== 0) {
        const extent = Buffer.allocUnsafe(E);
        if (ownData) await this.reader.readForCopy(ownData, carry, extent);
        else blockChecksums(extent.fill(0), sums); // after a tombstone: zeros around the data
        blocks.copy(extent, bFirst * B);
        parts = [];
        forEachRun((carry | wmask) >>> 0, pool.blocksPerExtent, (a, b) => parts.push({ at: a * B, buf: extent.subarray(a * B, b * B) }));
      }
      blockChecksums(blocks, sums, bFirst);
      await settleAll(parts.map((p) => pool.files.write(slot * E + p.at, p.buf)));
      return { slot, mask: (carry | wmask) >>> 0, sums, txg: pool.record.txg, stable: 0, spare: ownData?.slot };
    } catch (err) {
      pool.unallocate(slot);
      throw err;
    }
  }

  /**
   * Before snapshot layer `s` merges into `child` (the next layer up in its volume): when the
   * child's entry at `index` holds only some blocks, the blocks it lacks that `s` supplied
   * (its data, or zeros over its tombstone) are written into the child's slot in place —
   * positions outside the child's mask, which no committed metadata references — and join
   * the child's mask. The view does not change (those blocks showed through from `s`); the
   * merge then moves no data.
   */
  async absorb(child: Layer, s: Layer, index: number): Promise<void> {
    const pool = this.pool;
    const E = pool.extentSize;
    const B = CHECKSUM_BLOCK;
    const c = pool.entriesOf(child).get(index);
    const e = pool.entriesOf(s).get(index);
    if (!c || !e) return;
    const need = missingBlocks(c, e, pool.fullMask);
    if (need === 0) return;
    const extent = Buffer.allocUnsafe(E);
    const sums = c.sums!.slice();
    const writes: Promise<void>[] = [];
    if (e.slot === ZERO_SLOT) extent.fill(0);
    else await this.reader.readForCopy(e, need, extent);
    forEachRun(need, pool.blocksPerExtent, (a, b) => {
      const run = extent.subarray(a * B, b * B);
      if (e.slot === ZERO_SLOT) blockChecksums(run, sums, a);
      else sums.set(e.sums!.subarray(a, b), a); // verified (or healed) against these; a block with no good copy stays detectably bad
      writes.push(pool.files.write(c.slot * E + a * B, run));
    });
    await settleAll(writes);
    pool.entriesOf(child).set(index, { ...c, mask: (c.mask | need) >>> 0, sums });
    pool.markDirty(child.id, index);
  }
}

/** `e` after `blocks` (blocks of `wmask`, from block `bFirst`) were written into its slot in place. */
function rewritten(e: ExtentEntry, wmask: number, blocks: Buffer, bFirst: number): ExtentEntry {
  const sums = e.sums!.slice();
  blockChecksums(blocks, sums, bFirst);
  return { slot: e.slot, mask: (e.mask | wmask) >>> 0, sums, txg: e.txg, stable: e.stable, spare: e.spare };
}

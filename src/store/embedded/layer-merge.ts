import { DisklessError } from '../../errors/index.js';
import type { EmbeddedPool } from './embedded-pool.js';
import { coversExtent, missingBlocks } from './extent-entry.js';
import type { Layer } from './pool-records.js';

/**
 * Step one of destroying snapshot layer `s`: each partial entry of `child` (the next layer up
 * in the same volume) over an entry of `s` takes the blocks it lacks from `s` (EmbeddedPool
 * `absorb`), so that the merge itself moves no data. Run once with writes flowing (the bulk),
 * then again inside the commit barrier (`inGate`) for entries written meanwhile.
 */
export async function absorbSnapshot(pool: EmbeddedPool, s: Layer, child: Layer, inGate: boolean): Promise<void> {
  const cEntries = pool.entriesOf(child);
  for (const [index, e] of [...pool.entriesOf(s)]) {
    const c = cEntries.get(index);
    if (c !== undefined && missingBlocks(c, e, pool.fullMask) !== 0) await pool.absorb(child, s, index, inGate);
  }
}

/**
 * Step two, in the commit: `s`'s entries that `child` does not override move into `child`;
 * where the child has an entry (which, after `absorbSnapshot`, holds every block `s`
 * supplied) the snapshot's slot is freed and its written mask joins the child's. Then `s` is
 * removed and the layer below counts what `child` hides of it.
 */
export function mergeSnapshotInto(pool: EmbeddedPool, s: Layer, child: Layer): void {
  const sEntries = pool.entriesOf(s);
  const cEntries = pool.entriesOf(child);
  for (const [index, e] of [...sEntries]) {
    const c = cEntries.get(index);
    if (c) {
      if (missingBlocks(c, e, pool.fullMask) !== 0) {
        // absorbSnapshot ran inside this commit's barrier: nothing can have changed since
        throw new DisklessError('STORE_BAD_METADATA', `pool ${pool.dir}: extent ${index} of layer ${child.id} lacks blocks of the snapshot layer ${s.id} it replaces`, { layer: child.id, index });
      }
      if (e.slot >= 0) pool.releaseSlot(e.slot);
      // The child's interval now includes the snapshot's: its written-block mask must too (incremental sends read it).
      if ((c.mask | e.mask) >>> 0 !== c.mask) pool.setEntry(child, index, { ...c, mask: (c.mask | e.mask) >>> 0 });
    } else {
      pool.setEntry(child, index, e);
      if (e.slot >= 0) child.record.dataExtents++;
    }
    pool.setEntry(s, index, undefined);
  }
  child.record.parent = s.record.parent;
  pool.touchLayer(child);
  const parent = s.record.parent !== 0 ? pool.layer(s.record.parent) : undefined;
  if (parent && parent.record.owner === child.record.owner) recountShadowed(pool, parent, child);
  pool.dropLayer(s); // its entries are all gone: frees nothing more, removes the record
}

/** Recomputes how many of `layer`'s data entries `child` hides whole. */
export function recountShadowed(pool: EmbeddedPool, layer: Layer, child: Layer): void {
  const cEntries = pool.entriesOf(child);
  let n = 0;
  for (const [index, e] of pool.entriesOf(layer)) if (e.slot >= 0 && coversExtent(cEntries.get(index), pool.fullMask)) n++;
  layer.record.shadowed = n;
  pool.touchLayer(layer);
}

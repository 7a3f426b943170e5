import type { EmbeddedPool } from './embedded-pool.js';
import type { Layer } from './pool-records.js';

/**
 * Destroying snapshot layer `s`: its entries that `child` (the next layer up in the same
 * volume) does not override move into `child`, the rest are freed, and `s` is removed; the
 * layer below then counts what `child` shadows of it.
 */
export function mergeSnapshotInto(pool: EmbeddedPool, s: Layer, child: Layer): void {
  const sEntries = pool.entriesOf(s);
  const cEntries = pool.entriesOf(child);
  for (const [index, e] of [...sEntries]) {
    const c = cEntries.get(index);
    if (c) {
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

/** Recomputes how many of `layer`'s data entries `child` overrides. */
export function recountShadowed(pool: EmbeddedPool, layer: Layer, child: Layer): void {
  const cEntries = pool.entriesOf(child);
  let n = 0;
  for (const [index, e] of pool.entriesOf(layer)) if (e.slot >= 0 && cEntries.has(index)) n++;
  layer.record.shadowed = n;
  pool.touchLayer(layer);
}

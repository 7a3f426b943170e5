import { coversExtent, ZERO_SLOT, type ExtentEntry } from './extent-entry.js';
import type { Hit, Layer } from './pool-records.js';

/**
 * Keeps a layer's space counters right after one extent of `head` changed from `own` (its own
 * entry, if any; else what `below()` — the entry visible from the parent down — showed
 * through) to `next` (undefined: the entry was removed): `referencedExtents` follows what the
 * view shows, `dataExtents` the slots the layer owns, and the parent snapshot's `shadowed`
 * grows when the head first hides the whole of one of its data entries (what destroying that
 * snapshot alone would free). `below` is called only when needed (not on a rewrite). `full`
 * is the mask of every block. `touch` marks a changed record.
 */
export function accountWrite(head: Layer, own: ExtentEntry | undefined, below: () => Hit | undefined, next: ExtentEntry | undefined, full: number, touch: (layer: Layer) => void): void {
  const r = head.record;
  const before = own ?? below()?.entry;
  const wasVisible = before !== undefined && before.slot !== ZERO_SLOT;
  const isVisible = next !== undefined && next.slot !== ZERO_SLOT;
  r.referencedExtents += (isVisible ? 1 : 0) - (wasVisible ? 1 : 0);
  r.dataExtents += (isVisible ? 1 : 0) - (own !== undefined && own.slot !== ZERO_SLOT ? 1 : 0);
  if (!coversExtent(own, full) && coversExtent(next, full)) {
    const b = below();
    if (b && b.layer.id === r.parent && b.layer.record.owner === r.owner && b.entry.slot !== ZERO_SLOT) {
      b.layer.record.shadowed++;
      touch(b.layer);
    }
  }
  touch(head);
}

import { blockRangeMask, forEachRun, ZERO_SLOT, type ExtentEntry } from './extent-entry.js';
import type { Hit, Layer } from './pool-records.js';

/** What resolving blocks needs from the pool. */
export interface LayerSource {
  layer(id: number): Layer;
  entriesOf(layer: Layer): Map<number, ExtentEntry>;
}

/** Blocks [first, end) of one extent and the entry whose slot holds them; no hit: they read as zeros. */
export interface BlockRun {
  readonly first: number;
  readonly end: number;
  readonly hit: Hit | undefined;
}

/**
 * Where each 4 KiB block [first, end) of extent `index` comes from in the view from layer
 * `view` down, as runs in block order: a data entry supplies the blocks of its mask that no
 * layer above supplied; a tombstone ends the walk (the rest read as zeros), and so does the
 * bottom of the chain.
 */
export function blockSources(pool: LayerSource, view: number, index: number, first: number, end: number): BlockRun[] {
  let remaining = blockRangeMask(first, end);
  const runs: BlockRun[] = [];
  for (let cur = view; cur !== 0 && remaining !== 0; ) {
    const layer = pool.layer(cur);
    const e = pool.entriesOf(layer).get(index);
    cur = layer.record.parent;
    if (!e) continue;
    if (e.slot === ZERO_SLOT) break;
    const take = (remaining & e.mask) >>> 0;
    if (take === 0) continue;
    const hit = { layer, entry: e };
    forEachRun(take, 32, (a, b) => runs.push({ first: a, end: b, hit }));
    remaining = (remaining & ~take) >>> 0;
  }
  if (remaining !== 0) forEachRun(remaining, 32, (a, b) => runs.push({ first: a, end: b, hit: undefined }));
  return runs.length > 1 ? runs.sort((x, y) => x.first - y.first) : runs;
}

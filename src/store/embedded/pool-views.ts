import { blockSources } from './block-sources.js';
import { CHECKSUM_BLOCK } from './block-checksums.js';
import type { EmbeddedPool } from './embedded-pool.js';
import { ZERO_SLOT } from './extent-entry.js';

/** Whether each extent from `offset` has data (mapped) in the view, as runs of whole blocks. */
export function mappedRuns(pool: EmbeddedPool, view: number, offset: number, length: number, maxRuns: number): { offset: number; length: number; mapped: boolean }[] {
  const E = pool.extentSize;
  const out: { offset: number; length: number; mapped: boolean }[] = [];
  const end = offset + length;
  for (let pos = offset; pos < end; ) {
    const index = Math.floor(pos / E);
    const stop = Math.min(end, (index + 1) * E);
    const hit = pool.lookup(view, index);
    const mapped = hit !== undefined && hit.entry.slot !== ZERO_SLOT;
    const last = out[out.length - 1];
    if (last && last.mapped === mapped) last.length += stop - pos;
    else {
      if (out.length === maxRuns) break;
      out.push({ offset: pos, length: stop - pos, mapped });
    }
    pos = stop;
  }
  return out;
}

/** Where the 4 KiB block holding byte `offset` of the view lives on each copy (tests inject corruption there). */
export function locate(pool: EmbeddedPool, view: number, offset: number): { path: string; position: number; length: number }[] {
  const E = pool.extentSize;
  const index = Math.floor(offset / E);
  const block = Math.floor((offset - index * E) / CHECKSUM_BLOCK);
  const hit = blockSources(pool, view, index, block, block + 1)[0]!.hit;
  if (!hit) return [];
  const position = hit.entry.slot * E + block * CHECKSUM_BLOCK;
  const out = [{ path: pool.files.primaryPath, position, length: CHECKSUM_BLOCK }];
  if (pool.files.mirrorPath !== undefined) out.push({ path: pool.files.mirrorPath, position, length: CHECKSUM_BLOCK });
  return out;
}

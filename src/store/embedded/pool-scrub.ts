import { blockChecksums, CHECKSUM_BLOCK } from './block-checksums.js';
import type { EmbeddedPool } from './embedded-pool.js';
import { popcount, ZERO_SLOT } from './extent-entry.js';
import type { Layer } from './pool-records.js';

/** Counts of one scrub pass. */
export interface ScrubCounts {
  bytesChecked: number;
  errors: number;
  repaired: number;
  unrecoverable: number;
}

/**
 * Scrub: reads every block the given layers hold (each entry's mask) on every copy, checks it against its CRC32C,
 * rewrites each bad copy from a good one, and counts what has no good copy left. Takes each
 * extent's lock, and skips an entry rewritten meanwhile (its new copy was checksummed as written).
 */
export async function scrubLayers(pool: EmbeddedPool, layers: readonly Layer[], counts: ScrubCounts): Promise<void> {
  const E = pool.extentSize;
  const B = CHECKSUM_BLOCK;
  const primary = Buffer.allocUnsafe(E);
  const mirror = Buffer.allocUnsafe(E);
  const sums = new Uint32Array(pool.blocksPerExtent);
  const msums = new Uint32Array(pool.blocksPerExtent);
  for (const layer of layers) {
    const list = [...pool.entriesOf(layer)].filter(([, e]) => e.slot !== ZERO_SLOT);
    for (const [index, entry] of list) {
      const unlock = await pool.locks.lock(layer.id, index);
      try {
        if (layer.removed || layer.entries?.get(index) !== entry) continue; // rewritten meanwhile: the new copy was checksummed as written
        const base = entry.slot * E;
        await pool.files.read('primary', base, primary);
        blockChecksums(primary, sums);
        const held = popcount(entry.mask) * B; // the slot holds only the blocks of its mask
        counts.bytesChecked += held;
        if (pool.files.mirrored) {
          await pool.files.read('mirror', base, mirror);
          blockChecksums(mirror, msums);
          counts.bytesChecked += held;
        }
        for (let b = 0; b < pool.blocksPerExtent; b++) {
          if (((entry.mask >>> b) & 1) === 0) continue;
          const want = entry.sums![b];
          const mirrored = pool.files.mirrored;
          const pOk = sums[b] === want;
          const mOk = mirrored && msums[b] === want;
          if (pOk && (mOk || !mirrored)) continue;
          counts.errors += (pOk ? 0 : 1) + (mirrored && !mOk ? 1 : 0);
          if (pOk || mOk) {
            const good = (pOk ? primary : mirror).subarray(b * B, (b + 1) * B);
            await pool.files.write(base + b * B, good, pOk ? 'mirror' : 'primary');
            counts.repaired++;
          } else counts.unrecoverable++;
        }
      } finally {
        unlock();
      }
    }
  }
}

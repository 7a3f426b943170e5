import { DisklessError } from '../../errors/index.js';

/**
 * One extent of one layer, as the embedded store keeps it in memory and in the `extents`
 * table. A layer holds an entry only for extents written while it was the volume's head:
 *   - data: `slot` is where the extent's bytes live in the pool's data file (and at the same
 *     place in the mirror). The slot holds exactly the 4 KiB blocks of `mask` — the blocks
 *     written in this layer — with `sums` their CRC32C; every other block shows through from
 *     the layers below (zeros if none has it). Copy-on-write is per block: a clone's first
 *     4 KiB write to an extent stores 4 KiB, not the extent.
 *   - zero (slot -1): the whole extent reads as zeros here even if a lower layer has data (a
 *     tombstone, left by unmap or an all-zero write over inherited data).
 * `mask` is also what an incremental send carries. `txg` is the transaction group in which the
 * slot was allocated. In memory only, `stable` is the part of `mask` that committed metadata
 * references: a block outside it may be written in place (after a crash nothing points at
 * it); a block inside it is never overwritten — the extent moves to a new slot instead.
 * Also in memory only, `spare` is the slot the extent left when it last moved: the slot its
 * next move asks for (FreeSlots), whose pages hold its blocks at the same positions.
 */
export interface ExtentEntry {
  readonly slot: number;
  readonly mask: number;
  readonly sums: Uint32Array | undefined;
  readonly txg: number;
  readonly stable: number;
  readonly spare?: number;
}

/** Slot value of a zero entry. */
export const ZERO_SLOT = -1;

const KIND_DATA = 1;
const KIND_ZERO = 2;
const HEADER = 16;

/** Table key: layer id then extent index, both u32 big-endian, so a layer's entries sort together in extent order. */
export function extentKey(layer: number, index: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k.writeUInt32BE(layer, 0);
  k.writeUInt32BE(index, 4);
  return k;
}

/** Inverse of `extentKey`. */
export function parseExtentKey(key: Uint8Array): { layer: number; index: number } {
  const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return { layer: b.readUInt32BE(0), index: b.readUInt32BE(4) };
}

/**
 * Value layout (little-endian): kind u8, 3 reserved zero bytes, slot u32 (0 for zero
 * entries), mask u32, txg u32, then for data entries one u32 CRC32C per 4 KiB block.
 */
export function encodeExtentEntry(e: ExtentEntry, blocksPerExtent: number): Buffer {
  const data = e.slot !== ZERO_SLOT;
  const v = Buffer.alloc(HEADER + (data ? 4 * blocksPerExtent : 0));
  v[0] = data ? KIND_DATA : KIND_ZERO;
  v.writeUInt32LE(data ? e.slot : 0, 4);
  v.writeUInt32LE(e.mask >>> 0, 8);
  v.writeUInt32LE(e.txg >>> 0, 12);
  if (data) for (let i = 0; i < blocksPerExtent; i++) v.writeUInt32LE(e.sums![i]!, HEADER + 4 * i);
  return v;
}

/** Inverse of `encodeExtentEntry`; STORE_BAD_METADATA on a value of the wrong shape. */
export function decodeExtentEntry(v: Uint8Array, blocksPerExtent: number): ExtentEntry {
  const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const kind = b[0];
  if (kind === KIND_ZERO && b.length === HEADER) return { slot: ZERO_SLOT, mask: b.readUInt32LE(8), sums: undefined, txg: b.readUInt32LE(12), stable: b.readUInt32LE(8), spare: undefined };
  if (kind === KIND_DATA && b.length === HEADER + 4 * blocksPerExtent) {
    const sums = new Uint32Array(blocksPerExtent);
    for (let i = 0; i < blocksPerExtent; i++) sums[i] = b.readUInt32LE(HEADER + 4 * i);
    return { slot: b.readUInt32LE(4), mask: b.readUInt32LE(8), sums, txg: b.readUInt32LE(12), stable: b.readUInt32LE(8), spare: undefined };
  }
  throw new DisklessError('STORE_BAD_METADATA', `cannot read an extent entry: kind ${String(kind)}, ${b.length} bytes (expected kind 1 with ${HEADER + 4 * blocksPerExtent} or kind 2 with ${HEADER})`, {
    field: 'extent',
    value: { kind, length: b.length },
    allowed: [`kind 1, ${HEADER + 4 * blocksPerExtent} bytes`, `kind 2, ${HEADER} bytes`],
  });
}

/** Number of set bits of a 32-bit mask. */
export function popcount(mask: number): number {
  let m = mask >>> 0;
  m = m - ((m >>> 1) & 0x55555555);
  m = (m & 0x33333333) + ((m >>> 2) & 0x33333333);
  return (((m + (m >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Mask with bits [first, end) set (end <= 32). */
export function blockRangeMask(first: number, end: number): number {
  if (end - first >= 32) return 0xffffffff >>> 0;
  return ((((1 << (end - first)) >>> 0) - 1) << first) >>> 0;
}

/** Mask of every block of an extent of `blocksPerExtent` blocks. */
export function fullMask(blocksPerExtent: number): number {
  return blockRangeMask(0, blocksPerExtent);
}

/** Whether `e` hides the whole extent below it (a tombstone, or data with every block written here). */
export function coversExtent(e: ExtentEntry | undefined, full: number): boolean {
  return e !== undefined && (e.slot === ZERO_SLOT || e.mask === full);
}

/**
 * Blocks that `lower` supplies under `upper` (an entry of the next layer up) and `upper` does
 * not hold: what upper must take in before lower can go (a tombstone supplies every block).
 */
export function missingBlocks(upper: ExtentEntry, lower: ExtentEntry, full: number): number {
  if (upper.slot === ZERO_SLOT) return 0;
  return ((lower.slot === ZERO_SLOT ? full : lower.mask) & ~upper.mask) >>> 0;
}

/** Calls `fn(first, end)` for each run of set bits of `mask` among bits [0, n). */
export function forEachRun(mask: number, n: number, fn: (first: number, end: number) => void): void {
  for (let b = 0; b < n; ) {
    if (((mask >>> b) & 1) === 0) {
      b++;
      continue;
    }
    let e = b + 1;
    while (e < n && ((mask >>> e) & 1) === 1) e++;
    fn(b, e);
    b = e;
  }
}

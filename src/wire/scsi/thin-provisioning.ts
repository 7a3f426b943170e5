/**
 * Logical block provisioning data (SBC-3 §4.7): the UNMAP parameter list (§5.28.2), GET LBA
 * STATUS parameter data (§5.16.2) and the limits the block limits VPD page advertises for
 * them. Pure.
 */

/** What the device server accepts in one UNMAP command (VPD B0h bytes 20-35). */
export interface UnmapLimits {
  /** Number of logical blocks on the unit; descriptors must stay below it. */
  readonly capacity: bigint;
  /** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT. */
  readonly maxDescriptors: number;
  /** MAXIMUM UNMAP LBA COUNT: the sum of all descriptors' block counts. */
  readonly maxBlocks: number;
}

/** One UNMAP block descriptor. */
export interface UnmapRange {
  readonly lba: bigint;
  readonly blocks: number;
}

/** Why an UNMAP parameter list is refused; `byte` is the field pointer into the parameter list. */
export type UnmapListError =
  /** Fewer than 8 bytes: PARAMETER LIST LENGTH ERROR (SBC-3 §5.28.1). */
  | { readonly kind: 'lengthError' }
  /** More descriptors or blocks than VPD B0h allows: INVALID FIELD IN PARAMETER LIST. */
  | { readonly kind: 'invalidField'; readonly byte: number }
  /** A descriptor reaches past the last LBA: LBA OUT OF RANGE, INFORMATION = its LBA. */
  | { readonly kind: 'outOfRange'; readonly lba: bigint };

/** Size of the UNMAP parameter list header and of one block descriptor. */
export const UNMAP_HEADER_LENGTH = 8;
export const UNMAP_DESCRIPTOR_LENGTH = 16;

/**
 * Decodes and checks an UNMAP parameter list (`list` = the Data-Out bytes, parameter list
 * length > 0). The descriptors are those the UNMAP BLOCK DESCRIPTOR DATA LENGTH announces and
 * the list really holds; a trailing partial descriptor is ignored (SBC-3 §5.28.2). Every
 * descriptor is checked before any is returned, so a refused list unmaps nothing. Descriptors
 * with 0 blocks are dropped (nothing to do, not an error).
 */
export function decodeUnmapList(list: Buffer, limits: UnmapLimits): { readonly ranges: UnmapRange[] } | { readonly error: UnmapListError } {
  if (list.length < UNMAP_HEADER_LENGTH) return { error: { kind: 'lengthError' } };
  const announced = list.readUInt16BE(2);
  const count = Math.floor(Math.min(announced, list.length - UNMAP_HEADER_LENGTH) / UNMAP_DESCRIPTOR_LENGTH);
  if (count > limits.maxDescriptors) return { error: { kind: 'invalidField', byte: 2 } };
  const ranges: UnmapRange[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = UNMAP_HEADER_LENGTH + i * UNMAP_DESCRIPTOR_LENGTH;
    const lba = list.readBigUInt64BE(at);
    const blocks = list.readUInt32BE(at + 8);
    if (lba + BigInt(blocks) > limits.capacity) return { error: { kind: 'outOfRange', lba } };
    total += blocks;
    if (total > limits.maxBlocks) return { error: { kind: 'invalidField', byte: at + 8 } };
    if (blocks > 0) ranges.push({ lba, blocks });
  }
  return { ranges };
}

/** Builds an UNMAP parameter list (tests, fuzz seeds): the header's two lengths and one descriptor per range. */
export function encodeUnmapList(ranges: readonly UnmapRange[]): Buffer {
  const b = Buffer.alloc(UNMAP_HEADER_LENGTH + UNMAP_DESCRIPTOR_LENGTH * ranges.length);
  b.writeUInt16BE(b.length - 2, 0); // UNMAP DATA LENGTH: the bytes after this field
  b.writeUInt16BE(UNMAP_DESCRIPTOR_LENGTH * ranges.length, 2);
  ranges.forEach((r, i) => {
    b.writeBigUInt64BE(r.lba, UNMAP_HEADER_LENGTH + i * UNMAP_DESCRIPTOR_LENGTH);
    b.writeUInt32BE(r.blocks, UNMAP_HEADER_LENGTH + i * UNMAP_DESCRIPTOR_LENGTH + 8);
  });
  return b;
}

/** PROVISIONING STATUS of an LBA status descriptor (SBC-3 §5.16.2 table 48). */
export const ProvisioningStatus = { mapped: 0, deallocated: 1, anchored: 2 } as const;

/** One LBA status descriptor. */
export interface LbaStatus {
  readonly lba: bigint;
  /** 1..2^32-1 blocks. */
  readonly blocks: number;
  readonly status: number;
}

/** Size of the GET LBA STATUS header and of one descriptor. */
export const LBA_STATUS_HEADER_LENGTH = 8;
export const LBA_STATUS_DESCRIPTOR_LENGTH = 16;
/** NUMBER OF LOGICAL BLOCKS is a 32-bit field: longer extents are split. */
export const MAX_LBA_STATUS_BLOCKS = 0xffffffff;

/**
 * GET LBA STATUS parameter data (SBC-3 §5.16.2): PARAMETER DATA LENGTH (the bytes after that
 * field) then one 16-byte descriptor per entry. The caller truncates to the allocation length.
 */
export function lbaStatusData(descriptors: readonly LbaStatus[]): Buffer {
  const b = Buffer.alloc(LBA_STATUS_HEADER_LENGTH + LBA_STATUS_DESCRIPTOR_LENGTH * descriptors.length);
  b.writeUInt32BE(b.length - 4, 0);
  descriptors.forEach((d, i) => {
    const at = LBA_STATUS_HEADER_LENGTH + i * LBA_STATUS_DESCRIPTOR_LENGTH;
    b.writeBigUInt64BE(d.lba, at);
    b.writeUInt32BE(d.blocks, at + 8);
    b[at + 12] = d.status & 0x0f;
  });
  return b;
}

/** Decodes GET LBA STATUS parameter data (tests, logs); a truncated trailing descriptor is dropped. */
export function decodeLbaStatusData(b: Buffer): { readonly parameterDataLength: number; readonly descriptors: LbaStatus[] } {
  if (b.length < LBA_STATUS_HEADER_LENGTH) throw new RangeError(`GET LBA STATUS data needs ${LBA_STATUS_HEADER_LENGTH} bytes, got ${b.length}`);
  const descriptors: LbaStatus[] = [];
  for (let at = LBA_STATUS_HEADER_LENGTH; at + LBA_STATUS_DESCRIPTOR_LENGTH <= b.length; at += LBA_STATUS_DESCRIPTOR_LENGTH) {
    descriptors.push({ lba: b.readBigUInt64BE(at), blocks: b.readUInt32BE(at + 8), status: b[at + 12]! & 0x0f });
  }
  return { parameterDataLength: b.readUInt32BE(0), descriptors };
}

/**
 * Logical block provisioning commands of a LogicalUnit (SBC-3 §4.7): WRITE SAME (with or
 * without UNMAP), UNMAP and GET LBA STATUS, and the VPD B0h limits they enforce. UNMAP and
 * GET LBA STATUS are only planned when the device can free blocks (geometry.provisioning).
 */
import { Asc, ScsiStatus, SenseKey } from '../../wire/scsi/scsi-constants.js';
import { decodeUnmapList, lbaStatusData, LBA_STATUS_DESCRIPTOR_LENGTH, LBA_STATUS_HEADER_LENGTH, MAX_LBA_STATUS_BLOCKS, ProvisioningStatus } from '../../wire/scsi/thin-provisioning.js';
import { cut, GOOD, type CommandPlan, type ScsiResult } from './command-plan.js';
import type { UnitContext } from './unit-context.js';

/**
 * Largest WRITE SAME, in bytes of medium (VPD B0h MAXIMUM WRITE SAME LENGTH, in blocks): 16 MiB
 * written (or unmapped) under one range lock. libiscsi's WriteSame16.Unmap, when the limit
 * allows 65536 blocks, first writes them with one 32 MiB WRITE (16), beyond MAX_TRANSFER_BYTES;
 * below it, it checks that 65536 blocks are refused.
 */
export const MAX_WRITE_SAME_BYTES = 16 * 1024 * 1024;
/** WRITE SAME writes its range in pieces of this size. */
const WRITE_SAME_CHUNK = 1024 * 1024;
/** Largest UNMAP, in bytes of medium summed over its descriptors (VPD B0h MAXIMUM UNMAP LBA COUNT; libiscsi wants <= 2^20 blocks). */
export const MAX_UNMAP_BYTES = 512 * 1024 * 1024;
/** Most block descriptors in one UNMAP (VPD B0h); each is one hole punched. */
export const MAX_UNMAP_DESCRIPTORS = 1024;
/** Most LBA status descriptors one GET LBA STATUS returns (fewer when the allocation length holds fewer). */
const MAX_LBA_STATUS_DESCRIPTORS = 256;

/** True when every byte of `b` is zero. */
function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** WRITE SAME 10/16 (SBC-3 §5.41-42): one block (or zeros with NDOB) repeated over the range. */
export function planWriteSame(u: UnitContext, lba: bigint, blocks: number, unmap: boolean, anchor: boolean, noDataOut: boolean, lengthByte: number): CommandPlan {
  const g = u.geometry;
  // ANCHOR: VPD B2h says ANC_SUP=0 (no anchored state), so it is refused with or without UNMAP (SBC-3 §5.42).
  if (anchor) return u.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 4 } });
  // UNMAP needs logical block provisioning (LBPWS); a fully provisioned unit refuses the bit.
  if (unmap && !g.provisioning) return u.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 3 } });
  if (blocks === 0) return u.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: lengthByte } });
  const bad = u.rangeCheck(lba, blocks);
  if (bad) return bad;
  if (blocks > (g.maxWriteSameBlocks ?? 0)) return u.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: lengthByte } });
  if (g.readOnly) return u.fail(SenseKey.dataProtect, Asc.writeProtected);
  const bs = g.blockSize;
  const fill = async (block: Buffer): Promise<ScsiResult> => {
    const offset = Number(lba) * bs;
    return u.locked(lba, blocks, async () => {
      const perChunk = Math.max(1, Math.floor(WRITE_SAME_CHUNK / bs));
      const chunk = Buffer.alloc(Math.min(blocks, perChunk) * bs);
      for (let i = 0; i < chunk.length; i += bs) block.copy(chunk, i);
      for (let done = 0; done < blocks; ) {
        const n = Math.min(perChunk, blocks - done);
        await u.device.write(offset + done * bs, chunk.subarray(0, n * bs));
        done += n;
      }
      return GOOD;
    });
  };
  // UNMAP=1 frees the range when what would be written is zeros: unmapped blocks read as zeros
  // (LBPRZ=1), so the result is the same data. Other data is written, as SBC-3 §5.42 requires
  // when unmapping could not return it.
  const deallocate = (): Promise<ScsiResult> => u.locked(lba, blocks, () => u.device.unmap(Number(lba) * bs, blocks * bs).then(() => GOOD));
  if (noDataOut) return { kind: 'noData', run: () => u.guard(() => (unmap ? deallocate() : fill(Buffer.alloc(bs)))) };
  return {
    kind: 'dataOut',
    length: bs,
    run: (data) =>
      u.guard(async () => {
        const block = Buffer.concat(data as Buffer[]);
        if (block.length < bs) return u.check({ key: SenseKey.illegalRequest, ...Asc.parameterListLengthError });
        return unmap && isZero(block.subarray(0, bs)) ? deallocate() : fill(block);
      }),
  };
}

/**
 * UNMAP (SBC-3 §5.28): the parameter list is checked whole (descriptor count, total blocks,
 * every range inside the unit) before the first hole is punched; then each range is
 * unmapped under the write lock of its blocks. ANCHOR is refused (ANC_SUP=0).
 */
export function planUnmap(u: UnitContext, anchor: boolean, parameterListLength: number): CommandPlan {
  const g = u.geometry;
  const p = g.provisioning!;
  if (anchor) return u.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 1, bit: 0 } });
  if (g.readOnly) return u.fail(SenseKey.dataProtect, Asc.writeProtected);
  const bs = g.blockSize;
  return u.parameters(parameterListLength, async (list) => {
    if (parameterListLength === 0) return GOOD; // nothing to unmap (SBC-3 §5.28.1)
    const decoded = decodeUnmapList(list, { capacity: g.blocks, maxDescriptors: p.maxUnmapDescriptors, maxBlocks: p.maxUnmapBlocks });
    if ('error' in decoded) {
      const e = decoded.error;
      if (e.kind === 'lengthError') return u.check({ key: SenseKey.illegalRequest, ...Asc.parameterListLengthError });
      if (e.kind === 'outOfRange') return u.check({ key: SenseKey.illegalRequest, ...Asc.lbaOutOfRange, information: e.lba });
      return u.check({ key: SenseKey.illegalRequest, ...Asc.invalidFieldInParameterList, field: { inCdb: false, byte: e.byte } });
    }
    for (const r of decoded.ranges) await u.locked(r.lba, r.blocks, () => u.device.unmap(Number(r.lba) * bs, r.blocks * bs));
    return GOOD;
  });
}

/**
 * GET LBA STATUS (SBC-3 §5.16): mapped / deallocated extents from `lba` to the end of the
 * unit, as many descriptors as the allocation length holds (at least one, at most
 * MAX_LBA_STATUS_DESCRIPTORS); the first starts at `lba`.
 */
export function planGetLbaStatus(u: UnitContext, lba: bigint, allocationLength: number): CommandPlan {
  const g = u.geometry;
  if (lba >= g.blocks) return u.fail(SenseKey.illegalRequest, Asc.lbaOutOfRange, { information: lba });
  const bs = g.blockSize;
  const fit = Math.floor((allocationLength - LBA_STATUS_HEADER_LENGTH) / LBA_STATUS_DESCRIPTOR_LENGTH);
  const max = Math.min(MAX_LBA_STATUS_DESCRIPTORS, Math.max(1, fit));
  const remaining = g.blocks - lba;
  const span = Number(remaining < BigInt(MAX_LBA_STATUS_BLOCKS) ? remaining : BigInt(MAX_LBA_STATUS_BLOCKS));
  return {
    kind: 'dataIn',
    run: () =>
      u.guard(async () => {
        const extents = await u.device.allocationStatus(Number(lba) * bs, span * bs, max);
        const descriptors = extents.map((e) => ({ lba: BigInt(e.offset / bs), blocks: e.length / bs, status: e.mapped ? ProvisioningStatus.mapped : ProvisioningStatus.deallocated }));
        return { status: ScsiStatus.good, data: cut(lbaStatusData(descriptors), allocationLength) };
      }),
  };
}

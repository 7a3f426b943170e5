/**
 * The data path of a LogicalUnit (SBC-3): READ, WRITE, the write-like commands (WRITE AND
 * VERIFY, ORWRITE), VERIFY and COMPARE AND WRITE. Each planner checks the range and transfer
 * length first, then returns a plan whose run reads or writes the device, writes under the
 * range lock of their blocks.
 */
import type { Cdb } from '../../wire/scsi/cdb.js';
import { checkCondition } from '../../wire/scsi/sense.js';
import { Asc, ScsiStatus, SenseKey } from '../../wire/scsi/scsi-constants.js';
import { GOOD, type CommandPlan } from './command-plan.js';
import type { ReadBufferSource } from './read-buffer-pool.js';
import type { UnitContext } from './unit-context.js';

/** Largest COMPARE AND WRITE, in blocks (VPD B0h). */
export const MAX_COMPARE_AND_WRITE_BLOCKS = 255;

/** The leading whole blocks of `data` (a list of buffers), without copying. */
function wholeBlocks(data: readonly Buffer[], blockSize: number): Buffer[] {
  let left = Math.floor(data.reduce((n, b) => n + b.length, 0) / blockSize) * blockSize;
  const out: Buffer[] = [];
  for (const b of data) {
    if (left <= 0) break;
    out.push(b.length <= left ? b : b.subarray(0, left));
    left -= b.length;
  }
  return out;
}

/** Index of the first byte where `a` and `b` differ (over b's length), -1 when equal. */
export function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION with the byte offset into the Data-Out buffer in INFORMATION (SBC-3 §5.2, §5.33). */
export function miscompare(offset: number): Error {
  return checkCondition(SenseKey.miscompare, Asc.miscompareDuringVerify, `miscompare at byte ${offset} of the Data-Out buffer`, { information: BigInt(offset) });
}

/**
 * READ / WRITE 10/12/16 (SBC-3 §5.13-16, §5.35-38). READ fills a buffer from `readBuffers`
 * (plain allocation without one); WRITE writes the whole blocks of what arrived.
 */
export function planReadWrite(u: UnitContext, cdb: Extract<Cdb, { op: 'read' | 'write' }>, cdbBytes: Buffer, readBuffers: ReadBufferSource | undefined): CommandPlan {
  const g = u.geometry;
  const bad = u.rangeCheck(cdb.lba, cdb.blocks) ?? u.lengthCheck(cdb.blocks, cdbBytes[0] === 0x28 || cdbBytes[0] === 0x2a ? 7 : 10);
  if (bad) return bad;
  const bytes = cdb.blocks * g.blockSize;
  const offset = Number(cdb.lba) * g.blockSize;
  if (cdb.op === 'read') {
    if (bytes === 0) return { kind: 'noData', run: async () => GOOD };
    return {
      kind: 'dataIn',
      run: () =>
        u.guard(async () => {
          const buf = readBuffers ? readBuffers.acquire(bytes) : Buffer.allocUnsafe(bytes);
          await u.device.readInto(offset, buf);
          return { status: ScsiStatus.good, data: buf };
        }),
    };
  }
  if (g.readOnly) return u.fail(SenseKey.dataProtect, Asc.writeProtected);
  if (bytes === 0) return { kind: 'noData', run: async () => GOOD };
  const fua = cdb.fua;
  const bs = g.blockSize;
  const lba = cdb.lba;
  return {
    kind: 'dataOut',
    length: bytes,
    run: (data) =>
      u.guard(async () => {
        const whole = wholeBlocks(data, bs);
        if (whole.length === 0) return GOOD;
        const n = whole.reduce((k, b) => k + b.length, 0) / bs;
        await u.locked(lba, n, () => u.device.write(offset, whole, { fua }));
        return GOOD;
      }),
  };
}

/** Range and transfer-length checks shared by the commands that write `blocks` blocks of Data-Out. */
export function planWriteLike(u: UnitContext, lba: bigint, blocks: number, lengthByte: number, apply: (offset: number, data: Buffer) => Promise<void>): CommandPlan {
  const bad = u.rangeCheck(lba, blocks) ?? u.lengthCheck(blocks, lengthByte);
  if (bad) return bad;
  if (u.geometry.readOnly) return u.fail(SenseKey.dataProtect, Asc.writeProtected);
  if (blocks === 0) return { kind: 'noData', run: async () => GOOD };
  const bs = u.geometry.blockSize;
  return {
    kind: 'dataOut',
    length: blocks * bs,
    run: (data) =>
      u.guard(async () => {
        const whole = Buffer.concat(wholeBlocks(data, bs));
        if (whole.length === 0) return GOOD;
        await u.locked(lba, whole.length / bs, () => apply(Number(lba) * bs, whole));
        return GOOD;
      }),
  };
}

/** VERIFY 10/12/16 (SBC-3 §5.33-35): BYTCHK 0 reads the medium, 1 compares every block, 3 compares one block against each. */
export function planVerify(u: UnitContext, lba: bigint, blocks: number, byteCheck: 0 | 1 | 3, lengthByte: number): CommandPlan {
  const bad = u.rangeCheck(lba, blocks) ?? u.lengthCheck(blocks, lengthByte);
  if (bad) return bad;
  const bs = u.geometry.blockSize;
  const offset = Number(lba) * bs;
  if (blocks === 0) return { kind: 'noData', run: async () => GOOD };
  // BYTCHK=0: the medium is checked by reading it (an I/O error becomes MEDIUM/HARDWARE ERROR).
  if (byteCheck === 0) return { kind: 'noData', run: () => u.guard(async () => (await u.device.read(offset, blocks * bs), GOOD)) };
  return {
    kind: 'dataOut',
    length: byteCheck === 1 ? blocks * bs : bs,
    run: (data) =>
      u.guard(async () => {
        const given = Buffer.concat(data as Buffer[]);
        if (given.length < (byteCheck === 1 ? blocks * bs : bs)) return u.check({ key: SenseKey.illegalRequest, ...Asc.parameterListLengthError });
        const medium = await u.device.read(offset, blocks * bs);
        for (let i = 0; i < blocks; i++) {
          const want = byteCheck === 1 ? given.subarray(i * bs, (i + 1) * bs) : given.subarray(0, bs);
          const at = firstDifference(medium.subarray(i * bs, (i + 1) * bs), want);
          if (at >= 0) throw miscompare(byteCheck === 1 ? i * bs + at : at);
        }
        return GOOD;
      }),
  };
}

/** COMPARE AND WRITE (SBC-3 §5.2): atomic under the range lock that every write to these blocks takes. */
export function planCompareAndWrite(u: UnitContext, lba: bigint, blocks: number, fua: boolean): CommandPlan {
  const bad = u.rangeCheck(lba, blocks);
  if (bad) return bad;
  if (blocks > (u.geometry.maxCompareAndWriteBlocks ?? 0)) return u.fail(SenseKey.illegalRequest, Asc.invalidFieldInCdb, { field: { inCdb: true, byte: 13 } });
  if (u.geometry.readOnly) return u.fail(SenseKey.dataProtect, Asc.writeProtected);
  if (blocks === 0) return { kind: 'noData', run: async () => GOOD };
  const bs = u.geometry.blockSize;
  const half = blocks * bs;
  return {
    kind: 'dataOut',
    length: 2 * half,
    run: (data) =>
      u.guard(async () => {
        const all = Buffer.concat(data as Buffer[]);
        if (all.length < 2 * half) return u.check({ key: SenseKey.illegalRequest, ...Asc.invalidFieldInCdb, field: { inCdb: true, byte: 13 } });
        const offset = Number(lba) * bs;
        return u.locked(lba, blocks, async () => {
          const current = await u.device.read(offset, half);
          const at = firstDifference(current, all.subarray(0, half));
          if (at >= 0) throw miscompare(at);
          await u.device.write(offset, all.subarray(half, 2 * half), { fua });
          return GOOD;
        });
      }),
  };
}

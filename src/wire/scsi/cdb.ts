/**
 * CDB decoding for the command set the target implements (SPC-4, SBC-3): the fields each
 * command uses, checked. A field the target cannot honour throws SCSI_CHECK_CONDITION with
 * ILLEGAL REQUEST / INVALID FIELD IN CDB and a field pointer; an opcode it does not
 * implement decodes to `{ op: 'unsupported' }` (the target answers INVALID COMMAND
 * OPERATION CODE). Pure.
 */
import { Asc, MaintenanceIn, ScsiOpcode, SenseKey, ServiceActionIn16 } from './scsi-constants.js';
import { checkCondition } from './sense.js';

export type Cdb =
  | { readonly op: 'testUnitReady' }
  | { readonly op: 'inquiry'; readonly evpd: boolean; readonly pageCode: number; readonly allocationLength: number }
  | { readonly op: 'requestSense'; readonly descriptorFormat: boolean; readonly allocationLength: number }
  | { readonly op: 'readCapacity10' }
  | { readonly op: 'readCapacity16'; readonly allocationLength: number }
  | { readonly op: 'read' | 'write'; readonly lba: bigint; readonly blocks: number; readonly fua: boolean }
  | { readonly op: 'synchronizeCache'; readonly lba: bigint; readonly blocks: number; readonly immediate: boolean }
  | { readonly op: 'reportLuns'; readonly selectReport: number; readonly allocationLength: number }
  | { readonly op: 'modeSense'; readonly ten: boolean; readonly disableBlockDescriptors: boolean; readonly longLba: boolean; readonly pageControl: number; readonly pageCode: number; readonly subpageCode: number; readonly allocationLength: number }
  /** VERIFY 10/12/16: BYTCHK 0 checks the medium only, 1 compares Data-Out block for block, 3 compares one block against every block. */
  | { readonly op: 'verify'; readonly lba: bigint; readonly blocks: number; readonly byteCheck: 0 | 1 | 3 }
  | { readonly op: 'writeAndVerify'; readonly lba: bigint; readonly blocks: number; readonly byteCheck: boolean }
  /** WRITE SAME 10/16: one block (none with NDOB: zeros) written to every block, or the range unmapped. */
  | { readonly op: 'writeSame'; readonly lba: bigint; readonly blocks: number; readonly unmap: boolean; readonly anchor: boolean; readonly noDataOut: boolean }
  | { readonly op: 'unmap'; readonly anchor: boolean; readonly parameterListLength: number }
  | { readonly op: 'getLbaStatus'; readonly lba: bigint; readonly allocationLength: number }
  | { readonly op: 'compareAndWrite'; readonly lba: bigint; readonly blocks: number; readonly fua: boolean }
  | { readonly op: 'orWrite'; readonly lba: bigint; readonly blocks: number; readonly fua: boolean }
  | { readonly op: 'prefetch'; readonly lba: bigint; readonly blocks: number; readonly immediate: boolean }
  | { readonly op: 'reportSupportedOpcodes'; readonly options: number; readonly opcode: number; readonly serviceAction: number; readonly timeouts: boolean; readonly allocationLength: number }
  | { readonly op: 'preventAllow'; readonly prevent: number }
  | { readonly op: 'startStopUnit'; readonly immediate: boolean; readonly powerCondition: number; readonly loadEject: boolean; readonly start: boolean; readonly noFlush: boolean }
  | { readonly op: 'reserve' | 'release'; readonly ten: boolean }
  | { readonly op: 'persistentReserveIn'; readonly serviceAction: number; readonly allocationLength: number }
  | { readonly op: 'persistentReserveOut'; readonly serviceAction: number; readonly scope: number; readonly type: number; readonly parameterListLength: number }
  | { readonly op: 'modeSelect'; readonly ten: boolean; readonly pageFormat: boolean; readonly savePages: boolean; readonly parameterListLength: number }
  | { readonly op: 'unsupported'; readonly opcode: number; readonly serviceAction?: number };

/** CDB length by group code, opcode bits 7-5 (SPC-4 §4.3.2); undefined for vendor/reserved groups. */
export function cdbLength(opcode: number): number | undefined {
  return [6, 10, 10, undefined, 16, 12, undefined, undefined][opcode >> 5];
}

const NACA = 0x04;

function invalidField(byte: number, bit: number | undefined, what: string, value: number | bigint): never {
  throw checkCondition(SenseKey.illegalRequest, Asc.invalidFieldInCdb, `cannot execute CDB: ${what} is ${String(value)}`, {
    field: bit === undefined ? { inCdb: true, byte } : { inCdb: true, byte, bit },
    cdbField: what,
    value,
  });
}

/**
 * Decodes a CDB (the 16-byte field of a SCSI Command PDU, or a shorter buffer holding at
 * least the command's length). Throws SCSI_CHECK_CONDITION for fields it cannot honour.
 */
export function decodeCdb(cdb: Buffer): Cdb {
  if (cdb.length === 0) return { op: 'unsupported', opcode: -1 };
  const op = cdb[0]!;
  const len = cdbLength(op);
  if (len === undefined || cdb.length < len) return { op: 'unsupported', opcode: op };
  if (cdb[len - 1]! & NACA) invalidField(len - 1, 2, 'NACA in the CONTROL byte (ACA is not supported)', 1);
  const u16 = (o: number) => cdb.readUInt16BE(o);
  const u32 = (o: number) => cdb.readUInt32BE(o);
  const rw = (kind: 'read' | 'write', lba: bigint, blocks: number, flags: number): Cdb => {
    if (flags & 0xe0) invalidField(1, 7, kind === 'read' ? 'RDPROTECT (no protection information)' : 'WRPROTECT (no protection information)', flags >> 5);
    return { op: kind, lba, blocks, fua: (flags & 0x08) !== 0 };
  };
  switch (op) {
    case ScsiOpcode.testUnitReady:
      return { op: 'testUnitReady' };
    case ScsiOpcode.inquiry: {
      if (cdb[1]! & 0x02) invalidField(1, 1, 'CMDDT (obsolete)', 1);
      const evpd = (cdb[1]! & 0x01) !== 0;
      if (!evpd && cdb[2] !== 0) invalidField(2, undefined, 'PAGE CODE without EVPD', cdb[2]!);
      return { op: 'inquiry', evpd, pageCode: cdb[2]!, allocationLength: u16(3) };
    }
    case ScsiOpcode.requestSense:
      return { op: 'requestSense', descriptorFormat: (cdb[1]! & 0x01) !== 0, allocationLength: cdb[4]! };
    case ScsiOpcode.readCapacity10:
      if ((cdb[8]! & 0x01) === 0 && u32(2) !== 0) invalidField(2, undefined, 'LOGICAL BLOCK ADDRESS without PMI', u32(2));
      return { op: 'readCapacity10' };
    case ScsiOpcode.serviceActionIn16: {
      const sa = cdb[1]! & 0x1f;
      if (sa === ServiceActionIn16.readCapacity16) return { op: 'readCapacity16', allocationLength: u32(10) };
      if (sa === ServiceActionIn16.getLbaStatus) return { op: 'getLbaStatus', lba: cdb.readBigUInt64BE(2), allocationLength: u32(10) };
      return { op: 'unsupported', opcode: op, serviceAction: sa };
    }
    case ScsiOpcode.read6:
    case ScsiOpcode.write6: {
      const lba = BigInt(((cdb[1]! & 0x1f) << 16) | u16(2));
      const blocks = cdb[4] === 0 ? 256 : cdb[4]!; // SBC-3 §5.7: 0 means 256 blocks
      return { op: op === ScsiOpcode.read6 ? 'read' : 'write', lba, blocks, fua: false };
    }
    case ScsiOpcode.read10:
    case ScsiOpcode.write10:
      return rw(op === ScsiOpcode.read10 ? 'read' : 'write', BigInt(u32(2)), u16(7), cdb[1]!);
    case ScsiOpcode.read12:
    case ScsiOpcode.write12:
      return rw(op === ScsiOpcode.read12 ? 'read' : 'write', BigInt(u32(2)), u32(6), cdb[1]!);
    case ScsiOpcode.read16:
    case ScsiOpcode.write16:
      return rw(op === ScsiOpcode.read16 ? 'read' : 'write', cdb.readBigUInt64BE(2), u32(10), cdb[1]!);
    case ScsiOpcode.synchronizeCache10:
      return { op: 'synchronizeCache', lba: BigInt(u32(2)), blocks: u16(7), immediate: (cdb[1]! & 0x02) !== 0 };
    case ScsiOpcode.synchronizeCache16:
      return { op: 'synchronizeCache', lba: cdb.readBigUInt64BE(2), blocks: u32(10), immediate: (cdb[1]! & 0x02) !== 0 };
    case ScsiOpcode.reportLuns: {
      const allocationLength = u32(6);
      // SPC-4 §6.33: an allocation length below 16 is an error.
      if (allocationLength < 16) invalidField(6, undefined, 'ALLOCATION LENGTH (REPORT LUNS needs at least 16)', allocationLength);
      return { op: 'reportLuns', selectReport: cdb[2]!, allocationLength };
    }
    case ScsiOpcode.modeSense6:
    case ScsiOpcode.modeSense10: {
      const ten = op === ScsiOpcode.modeSense10;
      return {
        op: 'modeSense',
        ten,
        disableBlockDescriptors: (cdb[1]! & 0x08) !== 0,
        longLba: ten && (cdb[1]! & 0x10) !== 0,
        pageControl: cdb[2]! >> 6,
        pageCode: cdb[2]! & 0x3f,
        subpageCode: cdb[3]!,
        allocationLength: ten ? u16(7) : cdb[4]!,
      };
    }
    case ScsiOpcode.verify10:
    case ScsiOpcode.verify12:
    case ScsiOpcode.verify16: {
      if (cdb[1]! & 0xe0) invalidField(1, 7, 'VRPROTECT (no protection information)', cdb[1]! >> 5);
      const byteCheck = (cdb[1]! >> 1) & 0x03;
      if (byteCheck === 2) invalidField(1, 2, 'BYTCHK', byteCheck);
      const [lba, blocks] = op === ScsiOpcode.verify10 ? [BigInt(u32(2)), u16(7)] : op === ScsiOpcode.verify12 ? [BigInt(u32(2)), u32(6)] : [cdb.readBigUInt64BE(2), u32(10)];
      return { op: 'verify', lba, blocks, byteCheck: byteCheck as 0 | 1 | 3 };
    }
    case ScsiOpcode.writeAndVerify10:
    case ScsiOpcode.writeAndVerify12:
    case ScsiOpcode.writeAndVerify16: {
      if (cdb[1]! & 0xe0) invalidField(1, 7, 'WRPROTECT (no protection information)', cdb[1]! >> 5);
      const byteCheck = (cdb[1]! >> 1) & 0x03;
      if (byteCheck > 1) invalidField(1, 2, 'BYTCHK', byteCheck);
      const [lba, blocks] = op === ScsiOpcode.writeAndVerify10 ? [BigInt(u32(2)), u16(7)] : op === ScsiOpcode.writeAndVerify12 ? [BigInt(u32(2)), u32(6)] : [cdb.readBigUInt64BE(2), u32(10)];
      return { op: 'writeAndVerify', lba, blocks, byteCheck: byteCheck === 1 };
    }
    case ScsiOpcode.writeSame10:
    case ScsiOpcode.writeSame16: {
      const f = cdb[1]!;
      if (f & 0xe0) invalidField(1, 7, 'WRPROTECT (no protection information)', f >> 5);
      const ten = op === ScsiOpcode.writeSame10;
      if (ten && f & 0x01) invalidField(1, 0, 'reserved bit of WRITE SAME (10)', 1);
      return { op: 'writeSame', lba: ten ? BigInt(u32(2)) : cdb.readBigUInt64BE(2), blocks: ten ? u16(7) : u32(10), unmap: (f & 0x08) !== 0, anchor: (f & 0x10) !== 0, noDataOut: !ten && (f & 0x01) !== 0 };
    }
    case ScsiOpcode.unmap:
      return { op: 'unmap', anchor: (cdb[1]! & 0x01) !== 0, parameterListLength: u16(7) };
    case ScsiOpcode.compareAndWrite:
    case ScsiOpcode.orWrite: {
      if (cdb[1]! & 0xe0) invalidField(1, 7, 'WRPROTECT (no protection information)', cdb[1]! >> 5);
      if (op === ScsiOpcode.compareAndWrite) return { op: 'compareAndWrite', lba: cdb.readBigUInt64BE(2), blocks: cdb[13]!, fua: (cdb[1]! & 0x08) !== 0 };
      return { op: 'orWrite', lba: cdb.readBigUInt64BE(2), blocks: u32(10), fua: (cdb[1]! & 0x08) !== 0 };
    }
    case ScsiOpcode.prefetch10:
      return { op: 'prefetch', lba: BigInt(u32(2)), blocks: u16(7), immediate: (cdb[1]! & 0x02) !== 0 };
    case ScsiOpcode.prefetch16:
      return { op: 'prefetch', lba: cdb.readBigUInt64BE(2), blocks: u32(10), immediate: (cdb[1]! & 0x02) !== 0 };
    case ScsiOpcode.maintenanceIn: {
      const sa = cdb[1]! & 0x1f;
      if (sa !== MaintenanceIn.reportSupportedOperationCodes) return { op: 'unsupported', opcode: op, serviceAction: sa };
      const options = cdb[2]! & 0x07;
      if (options > 3) invalidField(2, 2, 'REPORTING OPTIONS', options);
      return { op: 'reportSupportedOpcodes', options, opcode: cdb[3]!, serviceAction: u16(4), timeouts: (cdb[2]! & 0x80) !== 0, allocationLength: u32(6) };
    }
    case ScsiOpcode.preventAllowMediumRemoval:
      return { op: 'preventAllow', prevent: cdb[4]! & 0x03 };
    case ScsiOpcode.startStopUnit:
      return { op: 'startStopUnit', immediate: (cdb[1]! & 0x01) !== 0, powerCondition: cdb[4]! >> 4, noFlush: (cdb[4]! & 0x04) !== 0, loadEject: (cdb[4]! & 0x02) !== 0, start: (cdb[4]! & 0x01) !== 0 };
    case ScsiOpcode.reserve6:
    case ScsiOpcode.release6:
    case ScsiOpcode.reserve10:
    case ScsiOpcode.release10: {
      const ten = op === ScsiOpcode.reserve10 || op === ScsiOpcode.release10;
      // Third-party reservations (3RDPTY, SPC-2 §7.21) and the obsolete extent bit are not supported.
      if (cdb[1]! & (ten ? 0x12 : 0x01)) invalidField(1, ten ? 4 : 0, ten ? '3RDPTY/LONGID (third-party reservations)' : 'EXTENT (obsolete)', cdb[1]!);
      return { op: op === ScsiOpcode.reserve6 || op === ScsiOpcode.reserve10 ? 'reserve' : 'release', ten };
    }
    case ScsiOpcode.persistentReserveIn:
      return { op: 'persistentReserveIn', serviceAction: cdb[1]! & 0x1f, allocationLength: u16(7) };
    case ScsiOpcode.persistentReserveOut:
      return { op: 'persistentReserveOut', serviceAction: cdb[1]! & 0x1f, scope: cdb[2]! >> 4, type: cdb[2]! & 0x0f, parameterListLength: u32(5) };
    case ScsiOpcode.modeSelect6:
    case ScsiOpcode.modeSelect10: {
      const ten = op === ScsiOpcode.modeSelect10;
      return { op: 'modeSelect', ten, pageFormat: (cdb[1]! & 0x10) !== 0, savePages: (cdb[1]! & 0x01) !== 0, parameterListLength: ten ? u16(7) : cdb[4]! };
    }
    default:
      return { op: 'unsupported', opcode: op };
  }
}

/**
 * CDB decoding for the command set the target implements (SPC-4, SBC-3): the fields each
 * command uses, checked. A field the target cannot honour throws SCSI_CHECK_CONDITION with
 * ILLEGAL REQUEST / INVALID FIELD IN CDB and a field pointer; an opcode it does not
 * implement decodes to `{ op: 'unsupported' }` (the target answers INVALID COMMAND
 * OPERATION CODE). Pure.
 */
import { Asc, ScsiOpcode, SenseKey, ServiceActionIn16 } from './scsi-constants.js';
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
    default:
      return { op: 'unsupported', opcode: op };
  }
}

/**
 * Encoder of the Basic Header Segment of every opcode (RFC 7143 §11), the inverse of
 * `parsePdu`: reserved fields are written as zero.
 */
import { DisklessError } from '../../errors/index.js';
import { BHS_LENGTH, DataInFlag, FINAL_BIT, IMMEDIATE_BIT, IscsiOpcode, LoginFlag, ResidualFlag, ScsiCommandFlag, TextFlag } from './iscsi-constants.js';
import type { IscsiPdu } from './iscsi-pdu.js';

/**
 * Builds the 48-byte BHS of `pdu` (TotalAHSLength and DataSegmentLength from `pdu.ahs` and
 * `pdu.data`). Pure; the data segment itself is not copied (framing adds it).
 */
export function encodeBhs(pdu: IscsiPdu): Buffer {
  // From Node's shared pool, zeroed here: Buffer.alloc would malloc (and later free) a backing
  // store for each of these 48 bytes, once per response PDU — in a server whose C heap holds
  // a pool's metadata that malloc traffic cost ~5% of a 4 KiB read's CPU (perf, bench:store).
  const b = Buffer.allocUnsafe(BHS_LENGTH).fill(0);
  const ahsLength = pdu.opcode === IscsiOpcode.scsiCommand ? pdu.ahs.length : 0;
  if (ahsLength % 4 !== 0 || ahsLength > 255 * 4) throw new DisklessError('ISCSI_BAD_FIELD', `cannot encode iSCSI PDU: AHS length ${ahsLength} is not a multiple of 4 up to 1020`, { field: 'ahs', value: ahsLength });
  if (pdu.data.length > 0xffffff) throw new DisklessError('ISCSI_BAD_FIELD', `cannot encode iSCSI PDU: data segment of ${pdu.data.length} bytes exceeds 2^24-1`, { field: 'DataSegmentLength', value: pdu.data.length });
  const imm = 'immediate' in pdu && pdu.immediate ? IMMEDIATE_BIT : 0;
  b[0] = pdu.opcode | imm;
  b[4] = ahsLength / 4;
  b.writeUIntBE(pdu.data.length, 5, 3);
  const u32 = (v: number, o: number) => b.writeUInt32BE(v >>> 0, o);
  const lun = (v: bigint) => b.writeBigUInt64BE(BigInt.asUintN(64, v), 8);
  const fin = (f: boolean) => (f ? FINAL_BIT : 0);
  const sn3 = (p: { statSN: number; expCmdSN: number; maxCmdSN: number }) => {
    u32(p.statSN, 24);
    u32(p.expCmdSN, 28);
    u32(p.maxCmdSN, 32);
  };
  switch (pdu.opcode) {
    case IscsiOpcode.nopOut:
      b[1] = FINAL_BIT;
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.ttt, 20);
      u32(pdu.cmdSN, 24);
      u32(pdu.expStatSN, 28);
      break;
    case IscsiOpcode.scsiCommand:
      b[1] = fin(pdu.final) | (pdu.read ? ScsiCommandFlag.read : 0) | (pdu.write ? ScsiCommandFlag.write : 0) | (pdu.attribute & ScsiCommandFlag.attrMask);
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.expectedDataTransferLength, 20);
      u32(pdu.cmdSN, 24);
      u32(pdu.expStatSN, 28);
      pdu.cdb.copy(b, 32, 0, Math.min(16, pdu.cdb.length));
      break;
    case IscsiOpcode.scsiResponse:
      b[1] = FINAL_BIT | (pdu.bidiOverflow ? ResidualFlag.bidiOverflow : 0) | (pdu.bidiUnderflow ? ResidualFlag.bidiUnderflow : 0) | (pdu.overflow ? ResidualFlag.overflow : 0) | (pdu.underflow ? ResidualFlag.underflow : 0);
      b[2] = pdu.response;
      b[3] = pdu.status;
      u32(pdu.itt, 16);
      u32(pdu.snackTag, 20);
      sn3(pdu);
      u32(pdu.expDataSN, 36);
      u32(pdu.bidiResidualCount, 40);
      u32(pdu.residualCount, 44);
      break;
    case IscsiOpcode.taskManagementRequest:
      b[1] = FINAL_BIT | (pdu.function & 0x7f);
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.referencedTaskTag, 20);
      u32(pdu.cmdSN, 24);
      u32(pdu.expStatSN, 28);
      u32(pdu.refCmdSN, 32);
      u32(pdu.expDataSN, 36);
      break;
    case IscsiOpcode.taskManagementResponse:
      b[1] = FINAL_BIT;
      b[2] = pdu.response;
      u32(pdu.itt, 16);
      sn3(pdu);
      break;
    case IscsiOpcode.loginRequest:
    case IscsiOpcode.loginResponse:
      b[1] = (pdu.transit ? LoginFlag.transit : 0) | (pdu.continue ? LoginFlag.continue : 0) | ((pdu.csg & 3) << 2) | (pdu.nsg & 3);
      b[2] = pdu.versionMax;
      b.writeUIntBE(pdu.isid, 8, 6);
      b.writeUInt16BE(pdu.tsih, 14);
      u32(pdu.itt, 16);
      if (pdu.opcode === IscsiOpcode.loginRequest) {
        b[0] = pdu.opcode | IMMEDIATE_BIT; // §11.12: a Login Request always has I set
        b[3] = pdu.versionMin;
        b.writeUInt16BE(pdu.cid, 20);
        u32(pdu.cmdSN, 24);
        u32(pdu.expStatSN, 28);
      } else {
        b[3] = pdu.versionActive;
        sn3(pdu);
        b[36] = pdu.statusClass;
        b[37] = pdu.statusDetail;
      }
      break;
    case IscsiOpcode.textRequest:
    case IscsiOpcode.textResponse:
      b[1] = fin(pdu.final) | (pdu.continue ? TextFlag.continue : 0);
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.ttt, 20);
      if (pdu.opcode === IscsiOpcode.textRequest) {
        u32(pdu.cmdSN, 24);
        u32(pdu.expStatSN, 28);
      } else sn3(pdu);
      break;
    case IscsiOpcode.dataOut:
      b[1] = fin(pdu.final);
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.ttt, 20);
      u32(pdu.expStatSN, 28);
      u32(pdu.dataSN, 36);
      u32(pdu.bufferOffset, 40);
      break;
    case IscsiOpcode.dataIn:
      b[1] = fin(pdu.final) | (pdu.acknowledge ? DataInFlag.acknowledge : 0) | (pdu.overflow ? DataInFlag.overflow : 0) | (pdu.underflow ? DataInFlag.underflow : 0) | (pdu.statusPresent ? DataInFlag.status : 0);
      b[3] = pdu.status;
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.ttt, 20);
      sn3(pdu);
      u32(pdu.dataSN, 36);
      u32(pdu.bufferOffset, 40);
      u32(pdu.residualCount, 44);
      break;
    case IscsiOpcode.logoutRequest:
      b[1] = FINAL_BIT | (pdu.reason & 0x7f);
      u32(pdu.itt, 16);
      b.writeUInt16BE(pdu.cid, 20);
      u32(pdu.cmdSN, 24);
      u32(pdu.expStatSN, 28);
      break;
    case IscsiOpcode.logoutResponse:
      b[1] = FINAL_BIT;
      b[2] = pdu.response;
      u32(pdu.itt, 16);
      sn3(pdu);
      b.writeUInt16BE(pdu.time2Wait, 40);
      b.writeUInt16BE(pdu.time2Retain, 42);
      break;
    case IscsiOpcode.r2t:
      b[1] = FINAL_BIT;
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.ttt, 20);
      sn3(pdu);
      u32(pdu.r2tSN, 36);
      u32(pdu.bufferOffset, 40);
      u32(pdu.desiredDataTransferLength, 44);
      break;
    case IscsiOpcode.nopIn:
      b[1] = FINAL_BIT;
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.ttt, 20);
      sn3(pdu);
      break;
    case IscsiOpcode.reject:
      b[1] = FINAL_BIT;
      b[2] = pdu.reason;
      u32(0xffffffff, 16);
      sn3(pdu);
      u32(pdu.dataSN, 36);
      break;
    case IscsiOpcode.asyncMessage:
      b[1] = FINAL_BIT;
      lun(pdu.lun);
      u32(0xffffffff, 16);
      sn3(pdu);
      b[36] = pdu.asyncEvent;
      b[37] = pdu.asyncVCode;
      b.writeUInt16BE(pdu.parameter1, 38);
      b.writeUInt16BE(pdu.parameter2, 40);
      b.writeUInt16BE(pdu.parameter3, 42);
      break;
    case IscsiOpcode.snackRequest:
      b[1] = FINAL_BIT | (pdu.type & 0x0f);
      lun(pdu.lun);
      u32(pdu.itt, 16);
      u32(pdu.ttt, 20);
      u32(pdu.expStatSN, 28);
      u32(pdu.begRun, 40);
      u32(pdu.runLength, 44);
      break;
  }
  return b;
}

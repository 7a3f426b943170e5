/**
 * iSCSI PDU types and the pure codec between one framed PDU (`RawPdu`) and a typed object
 * (RFC 7143 §11). Every opcode of both directions is modelled field by field, so a PDU
 * captured from a real initiator decodes and re-encodes to the same bytes. Reserved fields
 * are ignored on decode (§11.2.1.1: "reserved fields ... ignored on receipt") and written
 * as zero. Framing (AHS, digests, padding, streams) lives in pdu-framing.ts.
 */
import { DisklessError } from '../../errors/index.js';
import { BHS_LENGTH, DataInFlag, FINAL_BIT, IMMEDIATE_BIT, IscsiOpcode, LoginFlag, ResidualFlag, ScsiCommandFlag, TextFlag } from './iscsi-constants.js';

/** One PDU as framed on the wire: the 48-byte BHS, the AHS bytes, the data segment (unpadded). */
export interface RawPdu {
  readonly bhs: Buffer;
  readonly ahs: Buffer;
  readonly data: Buffer;
}

interface Common {
  /** Data segment (without padding). Zero-copy: usually a subarray of a socket chunk. */
  readonly data: Buffer;
}

export interface NopOut extends Common { readonly opcode: typeof IscsiOpcode.nopOut; readonly immediate: boolean; readonly lun: bigint; readonly itt: number; readonly ttt: number; readonly cmdSN: number; readonly expStatSN: number }
export interface ScsiCommand extends Common {
  readonly opcode: typeof IscsiOpcode.scsiCommand;
  readonly immediate: boolean;
  /** F: no unsolicited Data-Out PDUs follow. */
  readonly final: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly attribute: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly expectedDataTransferLength: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  /** The 16-byte CDB field (longer CDBs continue in an extended-CDB AHS). */
  readonly cdb: Buffer;
  /** Additional Header Segments (§11.2.2), raw. */
  readonly ahs: Buffer;
}
export interface ScsiResponse extends Common {
  readonly opcode: typeof IscsiOpcode.scsiResponse;
  readonly bidiOverflow: boolean;
  readonly bidiUnderflow: boolean;
  readonly overflow: boolean;
  readonly underflow: boolean;
  readonly response: number;
  readonly status: number;
  readonly itt: number;
  readonly snackTag: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly expDataSN: number;
  readonly bidiResidualCount: number;
  readonly residualCount: number;
}
export interface TaskManagementRequest extends Common {
  readonly opcode: typeof IscsiOpcode.taskManagementRequest;
  readonly immediate: boolean;
  readonly function: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly referencedTaskTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly refCmdSN: number;
  readonly expDataSN: number;
}
export interface TaskManagementResponse extends Common { readonly opcode: typeof IscsiOpcode.taskManagementResponse; readonly response: number; readonly itt: number; readonly statSN: number; readonly expCmdSN: number; readonly maxCmdSN: number }
export interface LoginRequest extends Common {
  readonly opcode: typeof IscsiOpcode.loginRequest;
  readonly transit: boolean;
  readonly continue: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly versionMax: number;
  readonly versionMin: number;
  /** 6-byte initiator session id as a 48-bit integer. */
  readonly isid: number;
  readonly tsih: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}
export interface LoginResponse extends Common {
  readonly opcode: typeof IscsiOpcode.loginResponse;
  readonly transit: boolean;
  readonly continue: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly versionMax: number;
  readonly versionActive: number;
  readonly isid: number;
  readonly tsih: number;
  readonly itt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly statusClass: number;
  readonly statusDetail: number;
}
export interface TextRequest extends Common { readonly opcode: typeof IscsiOpcode.textRequest; readonly immediate: boolean; readonly final: boolean; readonly continue: boolean; readonly lun: bigint; readonly itt: number; readonly ttt: number; readonly cmdSN: number; readonly expStatSN: number }
export interface TextResponse extends Common { readonly opcode: typeof IscsiOpcode.textResponse; readonly final: boolean; readonly continue: boolean; readonly lun: bigint; readonly itt: number; readonly ttt: number; readonly statSN: number; readonly expCmdSN: number; readonly maxCmdSN: number }
export interface DataOut extends Common { readonly opcode: typeof IscsiOpcode.dataOut; readonly final: boolean; readonly lun: bigint; readonly itt: number; readonly ttt: number; readonly expStatSN: number; readonly dataSN: number; readonly bufferOffset: number }
export interface DataIn extends Common {
  readonly opcode: typeof IscsiOpcode.dataIn;
  readonly final: boolean;
  readonly acknowledge: boolean;
  readonly overflow: boolean;
  readonly underflow: boolean;
  /** S: the PDU carries the command's status (phase collapse, §11.7.4). */
  readonly statusPresent: boolean;
  readonly status: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly residualCount: number;
}
export interface LogoutRequest extends Common { readonly opcode: typeof IscsiOpcode.logoutRequest; readonly immediate: boolean; readonly reason: number; readonly itt: number; readonly cid: number; readonly cmdSN: number; readonly expStatSN: number }
export interface LogoutResponse extends Common { readonly opcode: typeof IscsiOpcode.logoutResponse; readonly response: number; readonly itt: number; readonly statSN: number; readonly expCmdSN: number; readonly maxCmdSN: number; readonly time2Wait: number; readonly time2Retain: number }
export interface ReadyToTransfer extends Common {
  readonly opcode: typeof IscsiOpcode.r2t;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly r2tSN: number;
  readonly bufferOffset: number;
  readonly desiredDataTransferLength: number;
}
export interface NopIn extends Common { readonly opcode: typeof IscsiOpcode.nopIn; readonly lun: bigint; readonly itt: number; readonly ttt: number; readonly statSN: number; readonly expCmdSN: number; readonly maxCmdSN: number }
export interface Reject extends Common { readonly opcode: typeof IscsiOpcode.reject; readonly reason: number; readonly statSN: number; readonly expCmdSN: number; readonly maxCmdSN: number; readonly dataSN: number }
export interface AsyncMessage extends Common {
  readonly opcode: typeof IscsiOpcode.asyncMessage;
  readonly lun: bigint;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly asyncEvent: number;
  readonly asyncVCode: number;
  readonly parameter1: number;
  readonly parameter2: number;
  readonly parameter3: number;
}
export interface SnackRequest extends Common { readonly opcode: typeof IscsiOpcode.snackRequest; readonly type: number; readonly lun: bigint; readonly itt: number; readonly ttt: number; readonly expStatSN: number; readonly begRun: number; readonly runLength: number }

/** PDUs an initiator sends. */
export type InitiatorPdu = NopOut | ScsiCommand | TaskManagementRequest | LoginRequest | TextRequest | DataOut | LogoutRequest | SnackRequest;
/** PDUs a target sends. */
export type TargetPdu = NopIn | ScsiResponse | TaskManagementResponse | LoginResponse | TextResponse | DataIn | LogoutResponse | ReadyToTransfer | AsyncMessage | Reject;
export type IscsiPdu = InitiatorPdu | TargetPdu;

/** Opcodes that must carry no data segment (§11.5, §11.14, §11.8, §11.16). */
const NO_DATA: ReadonlySet<number> = new Set([IscsiOpcode.taskManagementRequest, IscsiOpcode.logoutRequest, IscsiOpcode.snackRequest, IscsiOpcode.r2t, IscsiOpcode.taskManagementResponse, IscsiOpcode.logoutResponse]);

/** The opcode of a BHS (low 6 bits of byte 0). */
export function bhsOpcode(bhs: Buffer): number {
  return bhs[0]! & 0x3f;
}

/** The 24-bit DataSegmentLength of a BHS (§11.2.1.5). */
export function bhsDataSegmentLength(bhs: Buffer): number {
  return (bhs[5]! << 16) | (bhs[6]! << 8) | bhs[7]!;
}

/** TotalAHSLength in bytes (the field counts 4-byte words, §11.2.1.4). */
export function bhsAhsLength(bhs: Buffer): number {
  return bhs[4]! * 4;
}

/** Initiator Task Tag (bytes 16-19), for Reject and logs before a full decode. */
export function bhsItt(bhs: Buffer): number {
  return bhs.readUInt32BE(16);
}

/**
 * Decodes one framed PDU into its typed form. Throws ISCSI_BAD_OPCODE for an undefined
 * opcode, ISCSI_BAD_FIELD for a data segment on an opcode that forbids one or an AHS
 * anywhere but a SCSI Command, ISCSI_TRUNCATED if the BHS is not 48 bytes.
 */
export function parsePdu(raw: RawPdu): IscsiPdu {
  const b = raw.bhs;
  if (b.length !== BHS_LENGTH) throw new DisklessError('ISCSI_TRUNCATED', `cannot decode iSCSI PDU: BHS is ${b.length} bytes, not 48`, { field: 'bhs', length: b.length });
  const op = bhsOpcode(b);
  const immediate = (b[0]! & IMMEDIATE_BIT) !== 0;
  const f1 = b[1]!;
  const final = (f1 & FINAL_BIT) !== 0;
  const u32 = (o: number) => b.readUInt32BE(o);
  const lun = b.readBigUInt64BE(8);
  const data = raw.data;
  if (raw.ahs.length > 0 && op !== IscsiOpcode.scsiCommand) {
    throw new DisklessError('ISCSI_BAD_FIELD', `cannot decode iSCSI opcode 0x${op.toString(16)}: it carries ${raw.ahs.length} bytes of AHS, allowed only on SCSI Command`, { field: 'TotalAHSLength', value: raw.ahs.length, opcode: op });
  }
  if (data.length > 0 && NO_DATA.has(op)) {
    throw new DisklessError('ISCSI_BAD_FIELD', `cannot decode iSCSI opcode 0x${op.toString(16)}: DataSegmentLength is ${data.length}, must be 0`, { field: 'DataSegmentLength', value: data.length, opcode: op, allowed: [0] });
  }
  switch (op) {
    case IscsiOpcode.nopOut:
      return { opcode: op, immediate, lun, itt: u32(16), ttt: u32(20), cmdSN: u32(24), expStatSN: u32(28), data };
    case IscsiOpcode.scsiCommand:
      return {
        opcode: op,
        immediate,
        final,
        read: (f1 & ScsiCommandFlag.read) !== 0,
        write: (f1 & ScsiCommandFlag.write) !== 0,
        attribute: f1 & ScsiCommandFlag.attrMask,
        lun,
        itt: u32(16),
        expectedDataTransferLength: u32(20),
        cmdSN: u32(24),
        expStatSN: u32(28),
        cdb: b.subarray(32, 48),
        ahs: raw.ahs,
        data,
      };
    case IscsiOpcode.scsiResponse:
      return {
        opcode: op,
        bidiOverflow: (f1 & ResidualFlag.bidiOverflow) !== 0,
        bidiUnderflow: (f1 & ResidualFlag.bidiUnderflow) !== 0,
        overflow: (f1 & ResidualFlag.overflow) !== 0,
        underflow: (f1 & ResidualFlag.underflow) !== 0,
        response: b[2]!,
        status: b[3]!,
        itt: u32(16),
        snackTag: u32(20),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        expDataSN: u32(36),
        bidiResidualCount: u32(40),
        residualCount: u32(44),
        data,
      };
    case IscsiOpcode.taskManagementRequest:
      return { opcode: op, immediate, function: f1 & 0x7f, lun, itt: u32(16), referencedTaskTag: u32(20), cmdSN: u32(24), expStatSN: u32(28), refCmdSN: u32(32), expDataSN: u32(36), data };
    case IscsiOpcode.taskManagementResponse:
      return { opcode: op, response: b[2]!, itt: u32(16), statSN: u32(24), expCmdSN: u32(28), maxCmdSN: u32(32), data };
    case IscsiOpcode.loginRequest:
    case IscsiOpcode.loginResponse: {
      const csg = (f1 >> 2) & 3;
      const nsg = f1 & 3;
      const transit = (f1 & LoginFlag.transit) !== 0;
      if (csg === 2 || (transit && nsg === 2)) {
        throw new DisklessError('ISCSI_BAD_FIELD', `cannot decode login PDU: stage ${csg === 2 ? 'CSG' : 'NSG'} is 2 (reserved)`, { field: csg === 2 ? 'CSG' : 'NSG', value: 2, allowed: [0, 1, 3] });
      }
      const common = { transit, continue: (f1 & LoginFlag.continue) !== 0, csg, nsg, versionMax: b[2]!, isid: b.readUIntBE(8, 6), tsih: b.readUInt16BE(14), itt: u32(16), data };
      if (op === IscsiOpcode.loginRequest) return { opcode: op, ...common, versionMin: b[3]!, cid: b.readUInt16BE(20), cmdSN: u32(24), expStatSN: u32(28) };
      return { opcode: op, ...common, versionActive: b[3]!, statSN: u32(24), expCmdSN: u32(28), maxCmdSN: u32(32), statusClass: b[36]!, statusDetail: b[37]! };
    }
    case IscsiOpcode.textRequest:
      return { opcode: op, immediate, final, continue: (f1 & TextFlag.continue) !== 0, lun, itt: u32(16), ttt: u32(20), cmdSN: u32(24), expStatSN: u32(28), data };
    case IscsiOpcode.textResponse:
      return { opcode: op, final, continue: (f1 & TextFlag.continue) !== 0, lun, itt: u32(16), ttt: u32(20), statSN: u32(24), expCmdSN: u32(28), maxCmdSN: u32(32), data };
    case IscsiOpcode.dataOut:
      return { opcode: op, final, lun, itt: u32(16), ttt: u32(20), expStatSN: u32(28), dataSN: u32(36), bufferOffset: u32(40), data };
    case IscsiOpcode.dataIn:
      return {
        opcode: op,
        final,
        acknowledge: (f1 & DataInFlag.acknowledge) !== 0,
        overflow: (f1 & DataInFlag.overflow) !== 0,
        underflow: (f1 & DataInFlag.underflow) !== 0,
        statusPresent: (f1 & DataInFlag.status) !== 0,
        status: b[3]!,
        lun,
        itt: u32(16),
        ttt: u32(20),
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        dataSN: u32(36),
        bufferOffset: u32(40),
        residualCount: u32(44),
        data,
      };
    case IscsiOpcode.logoutRequest:
      return { opcode: op, immediate, reason: f1 & 0x7f, itt: u32(16), cid: b.readUInt16BE(20), cmdSN: u32(24), expStatSN: u32(28), data };
    case IscsiOpcode.logoutResponse:
      return { opcode: op, response: b[2]!, itt: u32(16), statSN: u32(24), expCmdSN: u32(28), maxCmdSN: u32(32), time2Wait: b.readUInt16BE(40), time2Retain: b.readUInt16BE(42), data };
    case IscsiOpcode.r2t:
      return { opcode: op, lun, itt: u32(16), ttt: u32(20), statSN: u32(24), expCmdSN: u32(28), maxCmdSN: u32(32), r2tSN: u32(36), bufferOffset: u32(40), desiredDataTransferLength: u32(44), data };
    case IscsiOpcode.nopIn:
      return { opcode: op, lun, itt: u32(16), ttt: u32(20), statSN: u32(24), expCmdSN: u32(28), maxCmdSN: u32(32), data };
    case IscsiOpcode.reject:
      return { opcode: op, reason: b[2]!, statSN: u32(24), expCmdSN: u32(28), maxCmdSN: u32(32), dataSN: u32(36), data };
    case IscsiOpcode.asyncMessage:
      return {
        opcode: op,
        lun,
        statSN: u32(24),
        expCmdSN: u32(28),
        maxCmdSN: u32(32),
        asyncEvent: b[36]!,
        asyncVCode: b[37]!,
        parameter1: b.readUInt16BE(38),
        parameter2: b.readUInt16BE(40),
        parameter3: b.readUInt16BE(42),
        data,
      };
    case IscsiOpcode.snackRequest:
      return { opcode: op, type: f1 & 0x0f, lun, itt: u32(16), ttt: u32(20), expStatSN: u32(28), begRun: u32(40), runLength: u32(44), data };
    default:
      throw new DisklessError('ISCSI_BAD_OPCODE', `cannot decode iSCSI PDU: opcode 0x${op.toString(16)} is not defined`, { field: 'opcode', value: op });
  }
}

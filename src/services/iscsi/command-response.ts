/**
 * The PDUs that end a SCSI command (RFC 7143 §11.4, §11.7): Data-In PDUs no longer than the
 * initiator's MaxRecvDataSegmentLength, grouped in sequences of at most MaxBurstLength with F
 * closing each, the status carried in the last one (phase collapse, §11.7.4) — or one SCSI
 * Response with sense data when there is nothing to send or the command failed. Residuals
 * compare the command's own length with the Expected Data Transfer Length (§11.4.5.2). Pure:
 * the Data-In payloads are subarrays of the result buffer (no copy).
 */
import { IscsiOpcode, RESERVED_TAG, ScsiResponseCode } from '../../wire/iscsi/iscsi-constants.js';
import type { ScsiCommand, TargetPdu } from '../../wire/iscsi/iscsi-pdu.js';
import { ScsiStatus } from '../../wire/scsi/scsi-constants.js';
import type { ScsiResult } from './logical-unit.js';

/** Sequence numbers and limits the connection supplies. */
export interface ResponseContext {
  /** Takes the next StatSN (called once, for the PDU that carries the status). */
  nextStatSN(): number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly maxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * The PDUs answering `cmd` with result `r`. `wanted` is, for a write, the byte count its CDB
 * asked to write (a read's is the length of `r.data`).
 */
export function commandResponse(cmd: ScsiCommand, r: ScsiResult, wanted: number, ctx: ResponseContext): TargetPdu[] {
  const edtl = cmd.expectedDataTransferLength;
  const produced = cmd.write ? wanted : (r.data?.length ?? 0);
  const over = produced > edtl ? produced - edtl : 0;
  const under = edtl > produced ? edtl - produced : 0;
  const data = r.data && !cmd.write && r.status === ScsiStatus.good ? r.data.subarray(0, Math.min(produced, edtl)) : EMPTY;
  if (data.length > 0) {
    const out: TargetPdu[] = [];
    let dataSN = 0;
    for (let off = 0; off < data.length; ) {
      // PDUs never straddle a burst boundary, and F closes each burst (§11.7.1).
      const burstEnd = (Math.floor(off / ctx.maxBurstLength) + 1) * ctx.maxBurstLength;
      const end = Math.min(off + ctx.maxRecvDataSegmentLength, burstEnd, data.length);
      const last = end === data.length;
      out.push({
        opcode: IscsiOpcode.dataIn,
        final: last || end === burstEnd,
        acknowledge: false,
        overflow: last && over > 0,
        underflow: last && under > 0,
        statusPresent: last,
        status: last ? r.status : 0,
        lun: 0n,
        itt: cmd.itt,
        ttt: RESERVED_TAG,
        statSN: last ? ctx.nextStatSN() : 0,
        expCmdSN: ctx.expCmdSN,
        maxCmdSN: ctx.maxCmdSN,
        dataSN: dataSN++,
        bufferOffset: off,
        residualCount: last ? over || under : 0,
        data: data.subarray(off, end),
      });
      off = end;
    }
    return out;
  }
  let sense = EMPTY;
  if (r.sense) {
    // §11.4.7.2: the data segment is SenseLength (2 bytes) then the sense data.
    sense = Buffer.allocUnsafe(2 + r.sense.length);
    sense.writeUInt16BE(r.sense.length, 0);
    r.sense.copy(sense, 2);
  }
  return [
    {
      opcode: IscsiOpcode.scsiResponse,
      bidiOverflow: false,
      bidiUnderflow: false,
      overflow: over > 0,
      underflow: under > 0,
      response: ScsiResponseCode.commandCompleted,
      status: r.status,
      itt: cmd.itt,
      snackTag: 0,
      statSN: ctx.nextStatSN(),
      expCmdSN: ctx.expCmdSN,
      maxCmdSN: ctx.maxCmdSN,
      expDataSN: 0,
      bidiResidualCount: 0,
      residualCount: over || under,
      data: sense,
    },
  ];
}

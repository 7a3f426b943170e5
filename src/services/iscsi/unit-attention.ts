/**
 * Unit attention conditions of one I_T nexus (SAM-5 §5.14, SPC-4 §5.14): queued by task
 * management (LUN reset, target reset, a task set cleared by another initiator), reported
 * once each as CHECK CONDITION / UNIT ATTENTION to the next command other than INQUIRY,
 * REPORT LUNS and REQUEST SENSE, and returned (and cleared) by REQUEST SENSE. An iSCSI session
 * is one I_T nexus here (one connection per session), so the connection keeps one of these
 * per LUN it addresses. Pure.
 */
import { ScsiStatus, SenseKey, type AscPair } from '../../wire/scsi/scsi-constants.js';
import { encodeDescriptorSense, encodeFixedSense } from '../../wire/scsi/sense.js';
import type { ScsiResult } from './logical-unit.js';

/** Additional sense codes of the unit attentions the transport raises (SPC-4 table 28). */
export const UnitAttentionAsc = {
  /** 29/00: target (warm or cold) reset; also what a new I_T nexus first sees (the target "powered on" for it). */
  powerOnOrReset: { asc: 0x29, ascq: 0x00 },
  /** 29/07: an I_T nexus this target knew ended (logout, drop, reinstatement) and has logged in again. */
  itNexusLoss: { asc: 0x29, ascq: 0x07 },
  /** 29/03: LOGICAL UNIT RESET. */
  busDeviceResetFunction: { asc: 0x29, ascq: 0x03 },
  /** 2F/00: CLEAR TASK SET (or a reset) issued on another I_T nexus aborted this nexus's commands. */
  commandsClearedByAnotherInitiator: { asc: 0x2f, ascq: 0x00 },
} as const satisfies Record<string, AscPair>;

const INQUIRY = 0x12;
const REPORT_LUNS = 0xa0;
const REQUEST_SENSE = 0x03;
/** Conditions kept per nexus; SAM-5 lets a full queue keep the oldest. */
const MAX_QUEUED = 8;

export class UnitAttentions {
  private readonly queue: AscPair[] = [];

  /** Number of conditions pending. */
  get pending(): number {
    return this.queue.length;
  }

  /** Adds a condition unless the same one is already pending. */
  raise(code: AscPair): void {
    if (this.queue.some((c) => c.asc === code.asc && c.ascq === code.ascq)) return;
    if (this.queue.length < MAX_QUEUED) this.queue.push(code);
  }

  clear(): void {
    this.queue.length = 0;
  }

  /**
   * The result to answer `cdb` with instead of executing it, or null when it runs normally:
   * a pending condition fails every command but INQUIRY, REPORT LUNS and REQUEST SENSE;
   * REQUEST SENSE returns the oldest condition as its parameter data (fixed format unless the
   * DESC bit asks for descriptor format) and clears it.
   */
  intercept(cdb: Buffer): ScsiResult | null {
    const next = this.queue[0];
    if (!next || cdb.length === 0) return null;
    const op = cdb[0]!;
    if (op === INQUIRY || op === REPORT_LUNS) return null;
    this.queue.shift();
    const sense = { key: SenseKey.unitAttention, asc: next.asc, ascq: next.ascq };
    if (op === REQUEST_SENSE) {
      const descriptor = cdb.length > 1 && (cdb[1]! & 1) === 1;
      const data = descriptor ? encodeDescriptorSense(sense) : encodeFixedSense(sense);
      const allocation = cdb.length > 4 ? cdb[4]! : 0;
      return { status: ScsiStatus.good, data: data.subarray(0, Math.min(allocation, data.length)) };
    }
    return { status: ScsiStatus.checkCondition, sense: encodeFixedSense(sense) };
  }
}

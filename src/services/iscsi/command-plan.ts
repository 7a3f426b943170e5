/**
 * The results and plans that LogicalUnit hands to the iSCSI connection, and the small values
 * every command planner shares (GOOD, RESERVATION CONFLICT, the CHECK CONDITION builder).
 * Pure data: nothing here touches a device.
 */
import { ScsiStatus } from '../../wire/scsi/scsi-constants.js';
import { encodeDescriptorSense, encodeFixedSense, type Sense } from '../../wire/scsi/sense.js';

/** The outcome of one SCSI command. */
export interface ScsiResult {
  readonly status: number;
  /** Sense data to send with CHECK CONDITION. */
  readonly sense?: Buffer;
  /** Data-In bytes produced (already cut to the CDB's allocation length, not to the iSCSI EDTL). */
  readonly data?: Buffer;
}

/** What a command needs from the transport before it can run. */
export type CommandPlan =
  | { readonly kind: 'dataIn' | 'noData'; run(): Promise<ScsiResult> }
  /**
   * A write of `length` bytes. The transport gathers min(length, EDTL) bytes of Data-Out and
   * calls run with them in order; run writes the whole blocks among them (an EDTL below the
   * CDB's length writes only what was sent, as libiscsi's residual tests expect).
   */
  | { readonly kind: 'dataOut'; readonly length: number; run(data: readonly Buffer[]): Promise<ScsiResult> }
  /** Fails before any data moves (the transport still absorbs unsolicited Data-Out). */
  | { readonly kind: 'fail'; readonly result: ScsiResult };

/** Largest READ/WRITE accepted, in bytes (one buffer per command is allocated for it). */
export const MAX_TRANSFER_BYTES = 8 * 1024 * 1024;

/** The CHECK CONDITION result for a sense. */
export function checkResult(sense: Sense, descriptor = false): ScsiResult {
  return { status: ScsiStatus.checkCondition, sense: descriptor ? encodeDescriptorSense(sense) : encodeFixedSense(sense) };
}

/** GOOD status, no data. */
export const GOOD: ScsiResult = { status: ScsiStatus.good };
/** RESERVATION CONFLICT status, no sense. */
export const RESERVATION_CONFLICT: ScsiResult = { status: ScsiStatus.reservationConflict };

/** `data` cut to the CDB's allocation length (without copying). */
export function cut(data: Buffer, allocationLength: number): Buffer {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}

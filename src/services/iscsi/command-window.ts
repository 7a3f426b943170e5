/**
 * The CmdSN side of one iSCSI session (RFC 7143 §3.2.2.1, §4.2.2): ExpCmdSN, the MaxCmdSN
 * window offered to the initiator, and the non-immediate PDUs held behind a CmdSN gap until
 * it fills. Owned by IscsiConnection, which delivers the PDUs this lets through.
 */
import type { Metrics } from '../../observe/metrics.js';
import { IscsiOpcode } from '../../wire/iscsi/iscsi-constants.js';
import type { DataOut, LogoutRequest, NopOut, ScsiCommand, TaskManagementRequest, TextRequest } from '../../wire/iscsi/iscsi-pdu.js';
import { ISCSI_METRICS as M } from './connection-context.js';

/** Serial number arithmetic on 32-bit sequence numbers (RFC 1982, RFC 7143 §4.2.2.1): true when `a` comes before `b`. */
export function snLess(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

/** PDUs that carry a CmdSN and are delivered in CmdSN order unless immediate (§3.2.2.1). */
export type OrderedPdu = ScsiCommand | NopOut | TextRequest | LogoutRequest | TaskManagementRequest;

/** A non-immediate PDU that arrived ahead of ExpCmdSN, waiting for the gap before it to fill. */
export interface Held {
  /** null: a CmdSN counted as received with nothing to run (an aborted command, §11.5.1). */
  pdu: OrderedPdu | null;
  readonly bhs: Buffer;
  /** Data-Out that came for a held command (unsolicited data), or the reason one was lost. */
  readonly dataOut: Array<DataOut | string>;
  dataOutBytes: number;
}

const EMPTY = Buffer.alloc(0);

/** ExpCmdSN, MaxCmdSN and the held PDUs of one session; one per IscsiConnection. */
export class CommandWindow {
  /** The next CmdSN to deliver. */
  expCmdSN = 0;
  /** Non-immediate PDUs received ahead of ExpCmdSN, by CmdSN: delivered in order once the gap fills. */
  readonly held = new Map<number, Held>();
  /** The highest MaxCmdSN sent: initiators never lower theirs (§4.2.2.1), so CmdSNs up to it stay valid. */
  maxCmdSNSent = 0;

  /** `limits.commandWindow` (the queue depth) is read on every MaxCmdSN computed. */
  constructor(
    private readonly metrics: Metrics,
    private readonly limits: { readonly commandWindow: number },
  ) {}

  /** Starts the window where the final login response left it (its ExpCmdSN and MaxCmdSN). */
  start(expCmdSN: number): void {
    this.expCmdSN = expCmdSN;
    this.maxCmdSNSent = (expCmdSN + this.limits.commandWindow - 1) >>> 0; // what the final login response said
  }

  /**
   * True when `pdu` runs now: immediate, or its CmdSN is ExpCmdSN (which then advances). One
   * ahead of a gap is held (false); outside [ExpCmdSN, MaxCmdSN], or a CmdSN already held, it
   * is dropped silently and counted (false).
   */
  admit(pdu: OrderedPdu, bhs: Buffer): boolean {
    if (!pdu.immediate) {
      const sn = pdu.cmdSN;
      if (snLess(sn, this.expCmdSN) || snLess(this.maxCmdSNSent, sn)) {
        this.metrics.inc(M.dropped, { reason: 'cmdsn-out-of-window' });
        return false;
      }
      if (sn !== this.expCmdSN) {
        if (this.held.has(sn)) this.metrics.inc(M.dropped, { reason: 'cmdsn-duplicate' });
        else this.held.set(sn, { pdu, bhs, dataOut: [], dataOutBytes: 0 });
        return false;
      }
      this.expCmdSN = (sn + 1) >>> 0;
    }
    return true;
  }

  /**
   * MaxCmdSN from the queue depth (`commandWindow`): ExpCmdSN + (depth - commands outstanding)
   * - 1, so the window closes as commands pile up and reopens as they complete; never below
   * ExpCmdSN - 1 (§4.2.2.1) and never below what was already sent (initiators ignore a lower
   * MaxCmdSN, so the target keeps honouring the old one). Called for every PDU that carries it.
   */
  maxCmdSN(outstanding: number): number {
    const free = this.limits.commandWindow - outstanding;
    const computed = (this.expCmdSN + Math.max(free, 0) - 1) >>> 0;
    if (snLess(this.maxCmdSNSent, computed)) this.maxCmdSNSent = computed;
    return this.maxCmdSNSent;
  }

  /** The held SCSI command with this ITT, if any. */
  heldCommand(itt: number): Held | undefined {
    for (const h of this.held.values()) if (h.pdu?.opcode === IscsiOpcode.scsiCommand && h.pdu.itt === itt) return h;
    return undefined;
  }

  /**
   * ABORT TASK of a command that has not arrived (§11.5.1): with RefCmdSN inside the window and
   * below the TMF's CmdSN, that CmdSN counts as received (the command is ignored if it comes)
   * and this returns true; false otherwise.
   */
  skipNotArrived(ref: number, cmdSN: number): boolean {
    if (!snLess(ref, cmdSN) || snLess(ref, this.expCmdSN) || snLess(this.maxCmdSNSent, ref)) return false;
    if (!this.held.has(ref)) this.held.set(ref, { pdu: null, bhs: EMPTY, dataOut: [], dataOutBytes: 0 });
    return true;
  }
}

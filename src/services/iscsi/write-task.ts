/**
 * The data-out side of one WRITE (RFC 7143 §4.2.5, §11.7, §11.8): immediate data in the
 * command PDU, then unsolicited Data-Out up to FirstBurstLength unless InitialR2T=Yes, then
 * R2Ts for the rest: up to MaxOutstandingR2T at once, each with its own TTT, R2TSN counting
 * from 0 per task, DesiredDataTransferLength at most MaxBurstLength, and buffer offsets in
 * ascending order (DataSequenceInOrder=Yes, §13.20). Every sequence (the unsolicited one and
 * one per R2T) is tracked on its own: its PDUs must come at increasing offsets with no gap
 * (DataPDUInOrder=Yes, §13.19), DataSN counts from 0 within it (§11.7.5), and its last PDU
 * carries F. PDUs of different outstanding R2Ts may interleave. The command runs once the
 * unsolicited sequence has ended and every solicited byte is in.
 * Pure bookkeeping: the connection sends the R2Ts and runs the command.
 */
import { RESERVED_TAG } from '../../wire/iscsi/iscsi-constants.js';
import type { DataOut, ScsiCommand } from '../../wire/iscsi/iscsi-pdu.js';
import type { CommandPlan, ScsiResult } from './logical-unit.js';
import type { SessionParameters } from './operational-keys.js';

/** One R2T to send (§11.8). */
export interface R2tRequest {
  readonly ttt: number;
  readonly r2tSN: number;
  readonly offset: number;
  readonly length: number;
}

export type WriteStep =
  | { readonly kind: 'wait' }
  /** Solicit these, in this order (ascending offsets). */
  | { readonly kind: 'r2t'; readonly r2ts: readonly R2tRequest[] }
  /** All data in: run it. `received` bytes moved, `wanted` bytes the CDB asked for, `written` bytes that reach the device. */
  | { readonly kind: 'run'; run(): Promise<ScsiResult>; readonly received: number; readonly wanted: number; readonly written: number };

/** One data sequence: the immediate data, the unsolicited Data-Out, or the answer to one R2T. */
interface Sequence {
  readonly start: number;
  /** Offset the next PDU must carry. */
  next: number;
  /** End (exclusive) the sequence may reach. */
  readonly end: number;
  /** DataSN the next PDU must carry. */
  dataSN: number;
  readonly segments: Buffer[];
}

export class WriteTask {
  /** Sequences in buffer-offset order: immediate, unsolicited, then one per R2T as issued. */
  private readonly sequences: Sequence[] = [];
  /** Outstanding R2T sequences by TTT. */
  private readonly outstanding = new Map<number, Sequence>();
  private readonly unsolicited: Sequence;
  private unsolicitedDone: boolean;
  /** Bytes to gather in all: what the CDB needs (capped by EDTL); 0 when the command fails before data. */
  private readonly target: number;
  private readonly need: number;
  private readonly failure: ScsiResult | null;
  /** Offset where the next R2T starts; -1 until the unsolicited sequence has ended. */
  private solicitFrom = -1;
  private r2tSN = 0;
  private received = 0;

  constructor(
    readonly command: ScsiCommand,
    private readonly plan: CommandPlan,
    private readonly params: SessionParameters,
    private readonly newTtt: () => number,
  ) {
    const edtl = command.write ? command.expectedDataTransferLength : 0;
    this.need = plan.kind === 'dataOut' ? plan.length : 0;
    this.failure = plan.kind === 'fail' ? plan.result : null;
    // EDTL below the CDB's length: only EDTL bytes can come (overflow, residual set by the connection).
    this.target = plan.kind === 'dataOut' ? Math.min(this.need, edtl) : 0;
    const immediate = command.data.length;
    if (immediate > 0) this.sequences.push({ start: 0, next: immediate, end: immediate, dataSN: 0, segments: [command.data] });
    this.received = immediate;
    const unsolicitedEnd = params.initialR2T ? immediate : Math.max(immediate, Math.min(params.firstBurstLength, edtl));
    this.unsolicited = { start: immediate, next: immediate, end: unsolicitedEnd, dataSN: 0, segments: [] };
    this.sequences.push(this.unsolicited);
    this.unsolicitedDone = command.final || immediate >= unsolicitedEnd;
  }

  /** R2Ts not yet answered in full. */
  get outstandingR2Ts(): number {
    return this.outstanding.size;
  }

  /**
   * Takes one Data-Out PDU; returns a reason string when it breaks the rules (the connection
   * then ends the command with CHECK CONDITION, ERL 0).
   */
  receive(pdu: DataOut): string | null {
    const len = pdu.data.length;
    if (pdu.ttt === RESERVED_TAG) {
      const u = this.unsolicited;
      if (pdu.bufferOffset !== u.next) return 'data-out-offset';
      if (pdu.dataSN !== u.dataSN) return 'data-out-datasn';
      if (this.unsolicitedDone || u.next + len > u.end) return 'data-out-unsolicited-overrun';
      this.take(u, pdu.data);
      if (pdu.final || u.next >= u.end) this.unsolicitedDone = true;
      return null;
    }
    const s = this.outstanding.get(pdu.ttt);
    if (!s) return 'data-out-unknown-ttt';
    if (pdu.bufferOffset !== s.next) return 'data-out-offset';
    if (pdu.dataSN !== s.dataSN) return 'data-out-datasn';
    if (s.next + len > s.end) return 'data-out-r2t-overrun';
    this.take(s, pdu.data);
    if (s.next === s.end) {
      if (!pdu.final) return 'data-out-missing-final';
      this.outstanding.delete(pdu.ttt);
    } else if (pdu.final) return 'data-out-early-final';
    return null;
  }

  /** What to do now: more R2Ts (keeping up to MaxOutstandingR2T in flight), wait, or run. */
  next(): WriteStep {
    if (!this.unsolicitedDone) return { kind: 'wait' };
    if (this.solicitFrom < 0) this.solicitFrom = this.unsolicited.next;
    const r2ts: R2tRequest[] = [];
    const limit = Math.max(1, this.params.maxOutstandingR2T);
    while (this.outstanding.size < limit && this.solicitFrom < this.target) {
      const offset = this.solicitFrom;
      const length = Math.min(this.params.maxBurstLength, this.target - offset);
      const ttt = this.newTtt();
      const s: Sequence = { start: offset, next: offset, end: offset + length, dataSN: 0, segments: [] };
      this.outstanding.set(ttt, s);
      this.sequences.push(s);
      this.solicitFrom = offset + length;
      r2ts.push({ ttt, r2tSN: this.r2tSN++, offset, length });
    }
    if (r2ts.length > 0) return { kind: 'r2t', r2ts };
    if (this.outstanding.size > 0) return { kind: 'wait' };
    const base = { received: this.received, wanted: this.need };
    if (this.failure) {
      const result = this.failure;
      return { kind: 'run', run: async () => result, ...base, written: 0 };
    }
    const plan = this.plan;
    if (plan.kind === 'dataOut') {
      const data = trim(this.sequences, this.target);
      return { kind: 'run', run: () => plan.run(data), ...base, written: this.target };
    }
    if (plan.kind === 'fail') return { kind: 'run', run: async () => plan.result, ...base, written: 0 };
    return { kind: 'run', run: () => plan.run(), ...base, written: 0 };
  }

  private take(s: Sequence, b: Buffer): void {
    s.dataSN++;
    if (b.length === 0) return;
    s.segments.push(b);
    s.next += b.length;
    this.received += b.length;
  }
}

/** The first `n` bytes of the sequences' segments, in offset order, without copying. */
function trim(sequences: readonly Sequence[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let left = n;
  for (const s of sequences) {
    for (const b of s.segments) {
      if (left <= 0) return out;
      out.push(b.length <= left ? b : b.subarray(0, left));
      left -= b.length;
    }
  }
  return out;
}

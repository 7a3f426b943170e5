/**
 * The data-out side of one WRITE (RFC 7143 §4.2.5, §11.8): immediate data in the command
 * PDU, then unsolicited Data-Out up to FirstBurstLength unless InitialR2T=Yes, then one R2T
 * at a time (MaxOutstandingR2T is 1 in this first cut) for the rest, each up to
 * MaxBurstLength. DataPDUInOrder=Yes, so every segment must start where the last ended.
 * Pure bookkeeping: the connection sends the R2Ts and runs the command.
 */
import { RESERVED_TAG } from '../../wire/iscsi/iscsi-constants.js';
import type { DataOut, ScsiCommand } from '../../wire/iscsi/iscsi-pdu.js';
import type { CommandPlan, ScsiResult } from './logical-unit.js';
import type { SessionParameters } from './operational-keys.js';

export type WriteStep =
  | { readonly kind: 'wait' }
  | { readonly kind: 'r2t'; readonly ttt: number; readonly r2tSN: number; readonly offset: number; readonly length: number }
  /** All data in: run it. `received` bytes moved, `wanted` bytes the CDB asked for, `written` bytes that reach the device. */
  | { readonly kind: 'run'; run(): Promise<ScsiResult>; readonly received: number; readonly wanted: number; readonly written: number };

export class WriteTask {
  private readonly segments: Buffer[] = [];
  private received = 0;
  private unsolicitedDone: boolean;
  private readonly unsolicitedLimit: number;
  /** Bytes to gather in all: what the CDB needs (capped by EDTL); 0 when the command fails before data. */
  private readonly target: number;
  private readonly need: number;
  private readonly failure: ScsiResult | null;
  private r2t: { ttt: number; end: number } | null = null;
  private r2tSN = 0;
  /** DataSN expected next: counts from 0 in each unsolicited or R2T sequence (§11.7.5). */
  private dataSN = 0;

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
    this.unsolicitedLimit = params.initialR2T ? command.data.length : Math.min(params.firstBurstLength, edtl);
    if (command.data.length > 0) this.segments.push(command.data);
    this.received = command.data.length;
    this.unsolicitedDone = command.final || this.received >= this.unsolicitedLimit;
  }

  /** Takes one Data-Out PDU; returns a reason string when it breaks the rules (the connection drops, ERL 0). */
  receive(pdu: DataOut): string | null {
    const len = pdu.data.length;
    if (pdu.bufferOffset !== this.received) return 'data-out-offset';
    if (pdu.dataSN !== this.dataSN) return 'data-out-datasn';
    this.dataSN++;
    if (pdu.ttt === RESERVED_TAG) {
      if (this.unsolicitedDone || this.received + len > this.unsolicitedLimit) return 'data-out-unsolicited-overrun';
      this.take(pdu.data);
      if (pdu.final || this.received >= this.unsolicitedLimit) this.unsolicitedDone = true;
      return null;
    }
    if (!this.r2t || pdu.ttt !== this.r2t.ttt) return 'data-out-unknown-ttt';
    if (this.received + len > this.r2t.end) return 'data-out-r2t-overrun';
    this.take(pdu.data);
    if (this.received === this.r2t.end) {
      if (!pdu.final) return 'data-out-missing-final';
      this.r2t = null;
    } else if (pdu.final) return 'data-out-early-final';
    return null;
  }

  /** What to do now. */
  next(): WriteStep {
    if (!this.unsolicitedDone || this.r2t) return { kind: 'wait' };
    if (this.received < this.target) {
      const length = Math.min(this.params.maxBurstLength, this.target - this.received);
      const ttt = this.newTtt();
      this.r2t = { ttt, end: this.received + length };
      this.dataSN = 0;
      return { kind: 'r2t', ttt, r2tSN: this.r2tSN++, offset: this.received, length };
    }
    const base = { received: this.received, wanted: this.need };
    if (this.failure) {
      const result = this.failure;
      return { kind: 'run', run: async () => result, ...base, written: 0 };
    }
    const plan = this.plan;
    if (plan.kind === 'dataOut') {
      const data = trim(this.segments, this.target);
      return { kind: 'run', run: () => plan.run(data), ...base, written: this.target };
    }
    if (plan.kind === 'fail') return { kind: 'run', run: async () => plan.result, ...base, written: 0 };
    return { kind: 'run', run: () => plan.run(), ...base, written: 0 };
  }

  private take(b: Buffer): void {
    if (b.length === 0) return;
    this.segments.push(b);
    this.received += b.length;
  }
}

/** The first `n` bytes of a list of buffers, without copying. */
function trim(bufs: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let left = n;
  for (const b of bufs) {
    if (left <= 0) break;
    out.push(b.length <= left ? b : b.subarray(0, left));
    left -= b.length;
  }
  return out;
}

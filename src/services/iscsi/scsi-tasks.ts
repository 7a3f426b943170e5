/**
 * The SCSI tasks of one iSCSI session: SCSI commands planned against the LUN and run, Data-In
 * with status in the last PDU (command-response.ts), writes with immediate data, unsolicited
 * Data-Out and R2T, several outstanding at once (write-task.ts), and the aborts task management
 * asks for. Owned by IscsiConnection, which hands it commands in CmdSN order and Data-Out as it
 * arrives.
 */
import type { TargetPdu, DataOut, ScsiCommand } from '../../wire/iscsi/iscsi-pdu.js';
import { IscsiOpcode, RejectReason } from '../../wire/iscsi/iscsi-constants.js';
import { ScsiStatus, SenseKey } from '../../wire/scsi/scsi-constants.js';
import { encodeFixedSense } from '../../wire/scsi/sense.js';
import type { EstablishedSession } from './login-negotiator.js';
import { LogicalUnit, type CommandPlan, type ScsiResult } from './logical-unit.js';
import { commandResponse } from './command-response.js';
import { WriteTask } from './write-task.js';
import type { UnitAttentions } from './unit-attention.js';
import { ISCSI_METRICS as M, type ConnectionContext } from './connection-context.js';
import type { CommandWindow } from './command-window.js';
import { decodeLun } from './decode-lun.js';
import { DATA_OUT_SENSE } from './data-out-sense.js';
import type { Task } from './task-management.js';

const EMPTY = Buffer.alloc(0);

/** What the SCSI tasks need from their connection (IscsiConnection). */
export interface TaskConnection {
  /** Rejects a PDU (§11.17); `bhs` undefined: the PDU being handled. */
  reject(bhs: Buffer | undefined, reason: number, why: string): void;
  /** Queues a PDU; `written` runs once its bytes have left. */
  send(pdu: TargetPdu, written?: () => void): void;
  /** The StatSN for a response, advanced. */
  nextStatSN(): number;
  /** The StatSN the next response will carry, not advanced (R2T). */
  statSN(): number;
  /** MaxCmdSN for a PDU that carries it. */
  maxCmdSN(): number;
  /** A fresh target transfer tag. */
  nextTtt(): number;
  /** True once the connection is closing: responses are then dropped. */
  closed(): boolean;
  /** Ends the connection on an unexpected error. */
  fatal(err: unknown): void;
}

/** Tasks by ITT and the write tasks still taking Data-Out, of one session. */
export class ScsiTasks {
  /** The session, set once login completes (before any command). */
  session: EstablishedSession | null = null;
  /** The logical unit of a normal session, set once login completes; null in a discovery session. */
  unit: LogicalUnit | null = null;
  /** Write tasks by ITT while their data comes in. */
  readonly writes = new Map<number, WriteTask>();
  /** Tasks by ITT: every SCSI command until its status is sent or it is aborted. */
  readonly tasks = new Map<number, Task>();
  /** The I/O running now, awaited before a logout is answered. */
  readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly window: CommandWindow,
    private readonly attentions: UnitAttentions,
    private readonly conn: TaskConnection,
  ) {}

  /** A Data-Out PDU: to its write task, kept for a held command, or dropped for an unknown one. */
  onDataOut(pdu: DataOut): void {
    const task = this.writes.get(pdu.itt);
    if (!task) {
      const h = this.window.heldCommand(pdu.itt);
      if (h) {
        // Unsolicited Data-Out of a command held behind a CmdSN gap: kept for it (at most FirstBurstLength).
        h.dataOutBytes += pdu.data.length;
        h.dataOut.push(h.dataOutBytes > this.session!.parameters.firstBurstLength ? 'data-out-unsolicited-overrun' : pdu);
        return;
      }
      // An aborted task's Data-Out may still be on its way (§11.5.1): discarded.
      this.ctx.metrics.inc(M.dropped, { reason: 'data-out-unknown-task' });
      return;
    }
    const problem = task.receive(pdu);
    if (problem) return this.failWrite(pdu.itt, problem);
    return this.advanceWrite(task);
  }

  /** A SCSI Command PDU, in CmdSN order: planned against the LUN, then run (reads) or started (writes). */
  onCommand(pdu: ScsiCommand): void {
    if (this.session!.type === 'discovery' || !this.unit) return this.conn.reject(undefined, RejectReason.commandNotSupported, 'scsi-in-discovery');
    const p = this.session!.parameters;
    if (pdu.data.length > 0 && (!p.immediateData || !pdu.write || pdu.data.length > Math.min(p.firstBurstLength, pdu.expectedDataTransferLength))) {
      return this.conn.reject(undefined, RejectReason.protocolError, 'bad-immediate-data');
    }
    if (this.tasks.has(pdu.itt)) return this.conn.reject(undefined, RejectReason.taskInProgress, 'itt-in-use');
    const lun = decodeLun(pdu.lun);
    const task: Task = { itt: pdu.itt, lun, aborted: false };
    this.tasks.set(pdu.itt, task);
    const attention = lun === this.unit.lun ? this.attentions.intercept(pdu.cdb) : null;
    const plan: CommandPlan = attention ? { kind: 'fail', result: attention } : lun === this.unit.lun ? this.unit.plan(pdu.cdb, pdu.write ? pdu.expectedDataTransferLength : 0) : LogicalUnit.planMissingLun(pdu.cdb, this.unit.identity, this.unit.lun);
    if (pdu.write || plan.kind === 'dataOut') {
      // A write CDB without the W bit moves no data (EDTL is then taken as 0): it completes with an overflow residual.
      const write = new WriteTask(pdu, plan, p, () => this.conn.nextTtt());
      this.writes.set(pdu.itt, write);
      this.advanceWrite(write);
      return;
    }
    this.spawn(task, async () => {
      const result = plan.kind === 'fail' ? plan.result : await plan.run();
      this.respond(pdu, result, 0, task);
    });
  }

  /** Moves a write task on: solicit more data with R2T, or run it once all data is in. */
  private advanceWrite(task: WriteTask): void {
    const next = task.next();
    if (next.kind === 'wait') return;
    if (next.kind === 'r2t') {
      // Up to MaxOutstandingR2T at once, in ascending offset order (DataSequenceInOrder=Yes).
      const maxCmdSN = this.conn.maxCmdSN();
      for (const r of next.r2ts) {
        this.conn.send({ opcode: IscsiOpcode.r2t, lun: task.command.lun, itt: task.command.itt, ttt: r.ttt, statSN: this.conn.statSN(), expCmdSN: this.window.expCmdSN, maxCmdSN, r2tSN: r.r2tSN, bufferOffset: r.offset, desiredDataTransferLength: r.length, data: EMPTY });
      }
      return;
    }
    this.writes.delete(task.command.itt);
    const record = this.tasks.get(task.command.itt);
    if (!record) return; // aborted while its data came in
    this.spawn(record, async () => {
      const result = await next.run();
      if (result.status === ScsiStatus.good) this.ctx.metrics.inc(M.writtenBytes, {}, next.written);
      this.respond(task.command, result, next.wanted, record);
    });
  }

  /**
   * Ends a write whose Data-Out broke the sequence rules (DataSN gap, bad offset, overrun, a
   * lost digest): at ERL 0 there is no within-command recovery, so the task ends with CHECK
   * CONDITION / ABORTED COMMAND (RFC 7143 §7.8-7.9: an out-of-order DataSN implies a digest
   * error) and its remaining Data-Out is discarded; the connection stays up.
   */
  failWrite(itt: number, reason: string): void {
    const write = this.writes.get(itt);
    const record = this.tasks.get(itt);
    if (!write || !record) {
      const h = this.window.heldCommand(itt);
      if (h) {
        h.dataOut.push(reason); // a held command's Data-Out was lost: it fails once delivered
        return;
      }
      this.ctx.metrics.inc(M.dropped, { reason: 'data-out-unknown-task' });
      return;
    }
    this.ctx.metrics.inc(M.dropped, { reason });
    this.writes.delete(itt);
    const asc = DATA_OUT_SENSE[reason] ?? DATA_OUT_SENSE['data-out-digest']!;
    const sense = encodeFixedSense({ key: SenseKey.abortedCommand, asc: asc.asc, ascq: asc.ascq });
    this.respond(write.command, { status: ScsiStatus.checkCondition, sense }, 0, record);
  }

  /** Sends the PDUs that end a command (command-response.ts), batched into one write; nothing for an aborted task. */
  private respond(cmd: ScsiCommand, r: ScsiResult, wanted: number, task: Task): void {
    if (task.aborted) return;
    if (this.tasks.get(task.itt) === task) this.tasks.delete(task.itt);
    if (this.conn.closed()) return;
    this.ctx.metrics.inc(M.commands, { status: r.status === ScsiStatus.good ? 'good' : 'check-condition' });
    const p = this.session!.parameters;
    const pdus = commandResponse(cmd, r, wanted, {
      nextStatSN: () => this.conn.nextStatSN(),
      expCmdSN: this.window.expCmdSN,
      maxCmdSN: this.conn.maxCmdSN(),
      maxRecvDataSegmentLength: p.initiatorMaxRecvDataSegmentLength,
      maxBurstLength: p.maxBurstLength,
    });
    const data = r.data;
    const pool = this.ctx.readBuffers;
    const last = pdus.length - 1;
    // The READ buffer goes back to the pool once the socket has written the last PDU sliced from it.
    for (let i = 0; i < last; i++) this.conn.send(pdus[i]!);
    this.conn.send(pdus[last]!, pool && data ? () => pool.release(data) : undefined);
    if (data && pdus[0]!.opcode === IscsiOpcode.dataIn) this.ctx.metrics.inc(M.readBytes, {}, Math.min(data.length, cmd.expectedDataTransferLength));
  }

  private spawn(task: Task, fn: () => Promise<void>): void {
    const p: Promise<void> = fn()
      .catch((err: unknown) => this.conn.fatal(err))
      .finally(() => this.inFlight.delete(p));
    task.running = p;
    this.inFlight.add(p);
  }

  /** Marks matching tasks aborted (no response will be sent), forgets their pending Data-Out; matching held commands never run. */
  abortTasks(match: (t: Task) => boolean): Task[] {
    for (const h of this.window.held.values()) {
      if (h.pdu?.opcode === IscsiOpcode.scsiCommand && match({ itt: h.pdu.itt, lun: decodeLun(h.pdu.lun), aborted: false })) h.pdu = null;
    }
    const out: Task[] = [];
    for (const t of this.tasks.values()) {
      if (!match(t)) continue;
      t.aborted = true;
      this.tasks.delete(t.itt);
      this.writes.delete(t.itt);
      out.push(t);
    }
    return out;
  }
}

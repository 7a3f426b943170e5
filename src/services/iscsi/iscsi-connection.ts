/**
 * One iSCSI connection (= one session: MaxConnections is 1): frames PDUs off the socket,
 * drives the login state machine, then runs the full feature phase — CmdSN/ExpCmdSN/
 * MaxCmdSN and StatSN bookkeeping (RFC 7143 §4.2.2; commands delivered in CmdSN order, MaxCmdSN
 * from the queue depth), SCSI commands against the LUN with
 * Data-In (status in the last PDU), writes with immediate data, unsolicited Data-Out and
 * R2T, several outstanding at once (write-task.ts), NOP-Out/NOP-In both ways (target pings on an idle connection and
 * drops it when nothing comes back), Text (SendTargets), Logout, Async Message (logout
 * request on shutdown), Task Management (ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LUN
 * RESET, TARGET WARM/COLD RESET with unit attentions, unit-attention.ts), CRC32C digests once
 * negotiated, and Reject for malformed PDUs. Created by IscsiServer for each accepted socket.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import { isDisklessError } from '../../errors/index.js';
import { IscsiOpcode, LogoutReason, LogoutResponseCode, RejectReason, RESERVED_TAG, TaskFunction, TaskResponse } from '../../wire/iscsi/iscsi-constants.js';
import { bhsItt, parsePdu, type DataOut, type IscsiPdu, type LogoutRequest, type NopOut, type ScsiCommand, type TargetPdu, type TaskManagementRequest, type TextRequest } from '../../wire/iscsi/iscsi-pdu.js';
import { encodePdu, NO_DIGESTS, PduReader, type DigestOptions } from '../../wire/iscsi/pdu-framing.js';
import { Crc32c } from '../../wire/iscsi/crc32c.js';
import { decodeTextKeys, type TextPair } from '../../wire/iscsi/text-keys.js';
import { ScsiStatus, SenseKey } from '../../wire/scsi/scsi-constants.js';
import { encodeFixedSense } from '../../wire/scsi/sense.js';
import { LoginNegotiator, type EstablishedSession, type LoginNegotiatorOptions } from './login-negotiator.js';
import { LogicalUnit, unitIdentity, type CommandPlan, type ScsiResult } from './logical-unit.js';
import { commandResponse } from './command-response.js';
import { portalAddress, sendTargetsAnswer, splitText } from './send-targets.js';
import { WriteTask } from './write-task.js';
import type { ReadBufferPool } from './read-buffer-pool.js';
import { UnitAttentionAsc, UnitAttentions } from './unit-attention.js';
import type { AscPair } from '../../wire/scsi/scsi-constants.js';

/** What the server hands each connection. */
export interface ConnectionContext {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly login: Omit<LoginNegotiatorOptions, 'initiatorAddress'>;
  readonly loginTimeoutMs: number;
  /** Called when the session ends, to free its TSIH. */
  readonly onClose: (tsih: number | undefined) => void;
  /**
   * Makes the kernel acknowledge what it has received now (TCP_QUICKACK, src/net). Called when
   * a read ends inside a PDU: iPXE sends a PDU's header and data as two segments and waits for
   * our ACK in between, which Linux would otherwise delay ~40 ms (seen at every login).
   */
  readonly acknowledgeNow?: (socket: Socket) => boolean;
  /** The digest function (hardware CRC32C when the addon has it). */
  readonly crc?: Crc32c;
  /** READ buffers, taken back once the socket has written their Data-In (the server's pool). */
  readonly readBuffers?: ReadBufferPool;
  /** Idle time before the target pings with a NOP-In (dead-peer detection); 0 = never. */
  readonly nopInIntervalMs?: number;
  /** How long a ping may stay unanswered (no byte received) before the connection is dropped. */
  readonly nopInTimeoutMs?: number;
  /** The server's view of all sessions: reinstatement and task management across sessions. */
  readonly sessions?: SessionRegistry;
}

/** What a connection needs to know about the other sessions of the server. */
export interface SessionRegistry {
  /** A login completed: the registry drops an older session with the same initiator, ISID and target (reinstatement, §6.3.5). */
  established(conn: IscsiConnection, session: EstablishedSession): void;
  /** Full-feature sessions logged in to `targetName`, this one included. */
  peers(targetName: string): readonly IscsiConnection[];
}

/** One SCSI task of this session, from its command PDU to its status. */
interface Task {
  readonly itt: number;
  readonly lun: number;
  aborted: boolean;
  /** The I/O in flight, awaited before an abort is reported complete. */
  running?: Promise<void>;
}

/** PDUs that carry a CmdSN and are delivered in CmdSN order unless immediate (§3.2.2.1). */
type OrderedPdu = ScsiCommand | NopOut | TextRequest | LogoutRequest | TaskManagementRequest;

/** A non-immediate PDU that arrived ahead of ExpCmdSN, waiting for the gap before it to fill. */
interface Held {
  /** null: a CmdSN counted as received with nothing to run (an aborted command, §11.5.1). */
  pdu: OrderedPdu | null;
  readonly bhs: Buffer;
  /** Data-Out that came for a held command (unsolicited data), or the reason one was lost. */
  readonly dataOut: Array<DataOut | string>;
  dataOutBytes: number;
}

const M = { dropped: 'diskless_iscsi_dropped_total', rejects: 'diskless_iscsi_rejects_total', commands: 'diskless_iscsi_commands_total', logins: 'diskless_iscsi_logins_total', readBytes: 'diskless_iscsi_read_bytes_total', writtenBytes: 'diskless_iscsi_written_bytes_total' } as const;

/** Serial number arithmetic on 32-bit sequence numbers (RFC 1982, RFC 7143 §4.2.2.1). */
function snLess(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

export class IscsiConnection {
  private readonly reader: PduReader;
  private readonly negotiator: LoginNegotiator;
  private session: EstablishedSession | null = null;
  private unit: LogicalUnit | null = null;
  private statSN = 0;
  private expCmdSN = 0;
  /** Non-immediate PDUs received ahead of ExpCmdSN, by CmdSN: delivered in order once the gap fills. */
  private readonly held = new Map<number, Held>();
  /** The highest MaxCmdSN sent: initiators never lower theirs (§4.2.2.1), so CmdSNs up to it stay valid. */
  private maxCmdSNSent = 0;
  private readonly writes = new Map<number, WriteTask>();
  /** Tasks by ITT: every SCSI command until its status is sent or it is aborted. */
  private readonly tasks = new Map<number, Task>();
  private readonly attentions = new UnitAttentions();
  private digests: DigestOptions = NO_DIGESTS;
  private readonly crc: Crc32c;
  private nopTimer: NodeJS.Timeout | undefined;
  private lastReceived = Date.now();
  /** The TTT and send time of the unanswered target ping, if any. */
  private ping: { ttt: number; sentAt: number } | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly textPending = new Map<number, { itt: number; rest: Buffer[] }>();
  private nextTag = 1;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private loginTimer: NodeJS.Timeout | undefined;
  private readonly remote: string;
  /** BHS of the PDU being handled, echoed in a Reject (§11.17.2). */
  private currentBhs: Buffer = Buffer.alloc(0);

  constructor(
    private readonly socket: Socket,
    private readonly ctx: ConnectionContext,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.negotiator = new LoginNegotiator({ ...ctx.login, initiatorAddress: socket.remoteAddress ?? '' });
    this.crc = ctx.crc ?? new Crc32c();
    this.reader = new PduReader({ crc: this.crc });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.ctx.log.debug({ remote: this.remote, err: err.message }, 'iscsi socket error'));
    socket.on('close', () => this.teardown());
    socket.on('drain', () => {
      if (socket.isPaused()) socket.resume();
    });
    this.loginTimer = setTimeout(() => this.drop('login-timeout'), ctx.loginTimeoutMs);
    this.loginTimer.unref();
  }

  /** Closes the connection now (server stop, session reinstatement). */
  destroy(): void {
    this.abortTasks(() => true);
    this.closed = true;
    this.flushSends();
    this.socket.destroy();
  }

  /** The session, once logged in. */
  get established(): EstablishedSession | null {
    return this.session;
  }

  /** True once the socket is gone. */
  get isClosed(): boolean {
    return this.closed || this.socket.destroyed;
  }

  /**
   * Asks the initiator to log out within `seconds` (Async Message, event 1, §11.9.1); false
   * when there is no full-feature session to ask (the caller then just closes).
   */
  requestLogout(seconds: number): boolean {
    if (!this.session || this.isClosed) return false;
    this.send({ opcode: IscsiOpcode.asyncMessage, lun: 0n, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN(), asyncEvent: 1, asyncVCode: 0, parameter1: 0, parameter2: 0, parameter3: seconds, data: EMPTY });
    return true;
  }

  private onData(chunk: Buffer): void {
    this.lastReceived = Date.now();
    this.ping = null; // any byte from the peer proves it is alive
    let pdus;
    try {
      pdus = this.reader.push(chunk);
    } catch (err) {
      // Framing is lost (segment too long, header digest): ERL 0 drops the connection (§7.8).
      this.drop(isDisklessError(err) ? err.code.toLowerCase() : 'framing');
      return;
    }
    // A small read ending inside a PDU is the iPXE pattern (one segment in flight, waiting for our ACK);
    // a large one means many segments in flight, which the kernel acknowledges by itself (and a
    // setsockopt per 64 KiB read cost 6% of the JS thread on 64 KiB writes).
    if (this.reader.buffered > 0 && chunk.length < QUICK_ACK_MAX_READ) this.ctx.acknowledgeNow?.(this.socket);
    for (const raw of pdus) {
      // PDUs are handled strictly in arrival order; long work (disk I/O) is spawned, not awaited, inside handlers.
      this.queue = this.queue.then(() => (this.closed ? undefined : this.handleRaw(raw))).catch((err: unknown) => this.fatal(err));
    }
  }

  private async handleRaw(raw: { bhs: Buffer; ahs: Buffer; data: Buffer; dataDigestError?: true }): Promise<void> {
    this.currentBhs = raw.bhs;
    // §7.8: a PDU whose data digest fails is discarded and rejected; ERL 0 then leaves recovery to the initiator.
    if (raw.dataDigestError) {
      this.reject(raw.bhs, RejectReason.dataDigestError, 'data-digest');
      // §7.8 at ERL 0: a Data-Out lost to a digest error cannot be recovered; its task ends with PROTOCOL SERVICE CRC ERROR.
      if ((raw.bhs[0]! & 0x3f) === IscsiOpcode.dataOut && this.session) this.failWrite(bhsItt(raw.bhs), 'data-out-digest');
      return;
    }
    let pdu: IscsiPdu;
    try {
      pdu = parsePdu(raw);
    } catch (err) {
      if (!isDisklessError(err)) throw err;
      if (!this.session) return this.drop('malformed-login');
      return this.reject(raw.bhs, err.code === 'ISCSI_BAD_OPCODE' ? RejectReason.commandNotSupported : RejectReason.invalidPduField, err.code.toLowerCase());
    }
    if (!this.session) {
      if (pdu.opcode !== IscsiOpcode.loginRequest) return this.drop('not-login-during-login');
      const step = await this.negotiator.handle(pdu);
      this.send(step.response);
      if (step.kind === 'fail') {
        this.ctx.metrics.inc(M.logins, { result: `0x${step.status.toString(16).padStart(4, '0')}` });
        this.ctx.log.info({ remote: this.remote, status: step.status, reason: step.reason }, 'iscsi login refused');
        this.negotiator.resolvedBinding?.release?.();
        this.socket.end();
        this.closed = true;
      } else if (step.kind === 'complete') this.establish(step.session);
      return;
    }
    switch (pdu.opcode) {
      case IscsiOpcode.scsiCommand:
      case IscsiOpcode.nopOut:
      case IscsiOpcode.textRequest:
      case IscsiOpcode.logoutRequest:
      case IscsiOpcode.taskManagementRequest:
        return this.ordered(pdu, raw.bhs);
      case IscsiOpcode.dataOut:
        return this.onDataOut(pdu);
      case IscsiOpcode.loginRequest:
        return this.reject(raw.bhs, RejectReason.protocolError, 'login-in-full-feature');
      default:
        // SNACK (needs ERL > 0) and target-only opcodes sent by an initiator.
        return this.reject(raw.bhs, RejectReason.protocolError, `unexpected-opcode-${pdu.opcode}`);
    }
  }

  private establish(s: EstablishedSession): void {
    clearTimeout(this.loginTimer);
    this.session = s;
    this.statSN = s.nextStatSN;
    this.expCmdSN = s.expCmdSN;
    this.maxCmdSNSent = (s.expCmdSN + this.ctx.login.commandWindow - 1) >>> 0; // what the final login response said
    this.reader.maxDataSegmentLength = s.parameters.targetMaxRecvDataSegmentLength;
    // Digests start with the first PDU after the final login response (§13.1).
    this.digests = { header: s.parameters.headerDigest, data: s.parameters.dataDigest };
    this.reader.digests = this.digests;
    this.ctx.sessions?.established(this, s);
    this.startPings();
    if (s.binding && s.targetName) {
      this.unit = new LogicalUnit(s.binding.device, s.binding.readOnly, unitIdentity(s.targetName, this.ctx.login.portalGroupTag, s.binding.serial), { lun: s.binding.lun ?? 0, initiator: s.initiatorName, isid: s.isid }, this.ctx.readBuffers);
    }
    if (this.unit) this.attentions.raise(nexusAttention(s));
    this.ctx.metrics.inc(M.logins, { result: 'success' });
    this.ctx.log.info({ remote: this.remote, initiator: s.initiatorName, target: s.targetName, type: s.type, auth: s.binding?.chap ? (s.binding.mutualChap ? 'CHAP+mutual' : 'CHAP') : 'None', tsih: s.tsih, headerDigest: this.digests.header, dataDigest: this.digests.data }, 'iscsi session established');
  }

  /**
   * Command ordering (§3.2.2.1, §4.2.2.1): immediate PDUs run at once; a non-immediate one runs
   * when its CmdSN is ExpCmdSN, then whatever waited behind it, in CmdSN order. One that comes
   * ahead of a gap is held until the gap fills (at most a window's worth: only CmdSNs in
   * [ExpCmdSN, MaxCmdSN] are taken); outside the window, or a CmdSN already held, it is
   * dropped silently and counted.
   */
  private ordered(pdu: OrderedPdu, bhs: Buffer): void | Promise<void> {
    if (!pdu.immediate) {
      const sn = pdu.cmdSN;
      if (snLess(sn, this.expCmdSN) || snLess(this.maxCmdSNSent, sn)) {
        this.ctx.metrics.inc(M.dropped, { reason: 'cmdsn-out-of-window' });
        return;
      }
      if (sn !== this.expCmdSN) {
        if (this.held.has(sn)) this.ctx.metrics.inc(M.dropped, { reason: 'cmdsn-duplicate' });
        else this.held.set(sn, { pdu, bhs, dataOut: [], dataOutBytes: 0 });
        return;
      }
      this.expCmdSN = (sn + 1) >>> 0;
    }
    const done = this.dispatch(pdu);
    if (this.held.size === 0) return done;
    return done ? done.then(() => this.deliverHeld()) : this.deliverHeld();
  }

  private dispatch(pdu: OrderedPdu): void | Promise<void> {
    switch (pdu.opcode) {
      case IscsiOpcode.scsiCommand:
        return this.onCommand(pdu);
      case IscsiOpcode.nopOut:
        return this.onNopOut(pdu);
      case IscsiOpcode.textRequest:
        return this.onText(pdu);
      case IscsiOpcode.logoutRequest:
        return this.onLogout(pdu);
      case IscsiOpcode.taskManagementRequest:
        return this.onTaskManagement(pdu);
    }
  }

  /** Runs the held PDUs the gap no longer blocks, in CmdSN order, each followed by the Data-Out that came for it. */
  private async deliverHeld(): Promise<void> {
    for (let h = this.held.get(this.expCmdSN); h && !this.closed; h = this.held.get(this.expCmdSN)) {
      this.held.delete(this.expCmdSN);
      this.expCmdSN = (this.expCmdSN + 1) >>> 0;
      if (!h.pdu) continue;
      this.currentBhs = h.bhs;
      await this.dispatch(h.pdu);
      for (const d of h.dataOut) {
        if (typeof d === 'string') this.failWrite(h.pdu.itt, d);
        else this.onDataOut(d);
      }
    }
  }

  /** The held SCSI command with this ITT, if any. */
  private heldCommand(itt: number): Held | undefined {
    for (const h of this.held.values()) if (h.pdu?.opcode === IscsiOpcode.scsiCommand && h.pdu.itt === itt) return h;
    return undefined;
  }

  private onDataOut(pdu: DataOut): void {
    const task = this.writes.get(pdu.itt);
    if (!task) {
      const h = this.heldCommand(pdu.itt);
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

  /**
   * MaxCmdSN from the queue depth (`commandWindow`): ExpCmdSN + (depth - commands outstanding)
   * - 1, so the window closes as commands pile up and reopens as they complete; never below
   * ExpCmdSN - 1 (§4.2.2.1) and never below what was already sent (initiators ignore a lower
   * MaxCmdSN, so the target keeps honouring the old one).
   */
  private maxCmdSN(): number {
    const free = this.ctx.login.commandWindow - this.tasks.size;
    const computed = (this.expCmdSN + Math.max(free, 0) - 1) >>> 0;
    if (snLess(this.maxCmdSNSent, computed)) this.maxCmdSNSent = computed;
    return this.maxCmdSNSent;
  }

  private nextStatSN(): number {
    const sn = this.statSN;
    this.statSN = (this.statSN + 1) >>> 0;
    return sn;
  }

  private onCommand(pdu: ScsiCommand): void {
    if (this.session!.type === 'discovery' || !this.unit) return this.reject(undefined, RejectReason.commandNotSupported, 'scsi-in-discovery');
    const p = this.session!.parameters;
    if (pdu.data.length > 0 && (!p.immediateData || !pdu.write || pdu.data.length > Math.min(p.firstBurstLength, pdu.expectedDataTransferLength))) {
      return this.reject(undefined, RejectReason.protocolError, 'bad-immediate-data');
    }
    if (this.tasks.has(pdu.itt)) return this.reject(undefined, RejectReason.taskInProgress, 'itt-in-use');
    const lun = decodeLun(pdu.lun);
    const task: Task = { itt: pdu.itt, lun, aborted: false };
    this.tasks.set(pdu.itt, task);
    const attention = lun === this.unit.lun ? this.attentions.intercept(pdu.cdb) : null;
    const plan: CommandPlan = attention ? { kind: 'fail', result: attention } : lun === this.unit.lun ? this.unit.plan(pdu.cdb, pdu.write ? pdu.expectedDataTransferLength : 0) : LogicalUnit.planMissingLun(pdu.cdb, this.unit.identity, this.unit.lun);
    if (pdu.write || plan.kind === 'dataOut') {
      // A write CDB without the W bit moves no data (EDTL is then taken as 0): it completes with an overflow residual.
      const write = new WriteTask(pdu, plan, p, () => this.nextTtt());
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
      const maxCmdSN = this.maxCmdSN();
      for (const r of next.r2ts) {
        this.send({ opcode: IscsiOpcode.r2t, lun: task.command.lun, itt: task.command.itt, ttt: r.ttt, statSN: this.statSN, expCmdSN: this.expCmdSN, maxCmdSN, r2tSN: r.r2tSN, bufferOffset: r.offset, desiredDataTransferLength: r.length, data: EMPTY });
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
  private failWrite(itt: number, reason: string): void {
    const write = this.writes.get(itt);
    const record = this.tasks.get(itt);
    if (!write || !record) {
      const h = this.heldCommand(itt);
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
    if (this.closed) return;
    this.ctx.metrics.inc(M.commands, { status: r.status === ScsiStatus.good ? 'good' : 'check-condition' });
    const p = this.session!.parameters;
    const pdus = commandResponse(cmd, r, wanted, {
      nextStatSN: () => this.nextStatSN(),
      expCmdSN: this.expCmdSN,
      maxCmdSN: this.maxCmdSN(),
      maxRecvDataSegmentLength: p.initiatorMaxRecvDataSegmentLength,
      maxBurstLength: p.maxBurstLength,
    });
    const data = r.data;
    const pool = this.ctx.readBuffers;
    const last = pdus.length - 1;
    // The READ buffer goes back to the pool once the socket has written the last PDU sliced from it.
    for (let i = 0; i < last; i++) this.send(pdus[i]!);
    this.send(pdus[last]!, pool && data ? () => pool.release(data) : undefined);
    if (data && pdus[0]!.opcode === IscsiOpcode.dataIn) this.ctx.metrics.inc(M.readBytes, {}, Math.min(data.length, cmd.expectedDataTransferLength));
  }

  private onNopOut(pdu: NopOut): void {
    if (pdu.itt === RESERVED_TAG) return; // an answer to a target ping (§11.18): nothing to send (onData already cleared it)
    this.send({ opcode: IscsiOpcode.nopIn, lun: pdu.lun, itt: pdu.itt, ttt: RESERVED_TAG, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN(), data: pdu.data });
  }

  private async onText(pdu: TextRequest): Promise<void> {
    const s = this.session!;
    let pieces: Buffer[];
    if (pdu.ttt !== RESERVED_TAG) {
      const pending = this.textPending.get(pdu.ttt);
      this.textPending.delete(pdu.ttt);
      if (!pending || pending.itt !== pdu.itt) return this.reject(undefined, RejectReason.invalidPduField, 'text-unknown-ttt');
      pieces = pending.rest;
    } else {
      if (pdu.continue) return this.reject(undefined, RejectReason.protocolError, 'text-request-continue');
      let keys: TextPair[];
      try {
        keys = decodeTextKeys(pdu.data);
      } catch (err) {
        if (!isDisklessError(err)) throw err;
        return this.reject(undefined, RejectReason.invalidPduField, 'bad-text');
      }
      const answer: TextPair[] = [];
      for (const { key, value } of keys) {
        if (key !== 'SendTargets') {
          answer.push({ key, value: 'NotUnderstood' });
          continue;
        }
        const listings = await this.ctx.login.resolver.listTargets({ name: s.initiatorName, address: this.socket.remoteAddress ?? '' }).catch((err: unknown) => {
          this.ctx.log.warn({ err: (err as Error).message }, 'iscsi listTargets failed');
          return [];
        });
        const pairs = sendTargetsAnswer(value, listings, {
          discovery: s.type === 'discovery',
          ...(s.targetName !== undefined ? { sessionTarget: s.targetName } : {}),
          localPortal: portalAddress(this.socket.localAddress ?? '0.0.0.0', this.socket.localPort ?? 0),
          portalGroupTag: this.ctx.login.portalGroupTag,
        });
        answer.push(...(pairs ?? [{ key, value: 'Reject' }]));
      }
      pieces = splitText(answer, s.parameters.initiatorMaxRecvDataSegmentLength);
    }
    const [first, ...rest] = pieces;
    let ttt = RESERVED_TAG;
    if (rest.length > 0) {
      ttt = this.nextTtt();
      this.textPending.set(ttt, { itt: pdu.itt, rest });
    }
    this.send({ opcode: IscsiOpcode.textResponse, final: rest.length === 0, continue: rest.length > 0, lun: pdu.lun, itt: pdu.itt, ttt, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN(), data: first ?? EMPTY });
  }

  private async onLogout(pdu: LogoutRequest): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    // One connection per session: closing the connection closes the session; its CID must be ours.
    const response =
      pdu.reason === LogoutReason.removeConnectionForRecovery ? LogoutResponseCode.recoveryNotSupported
      : pdu.reason === LogoutReason.closeConnection && pdu.cid !== this.session!.cid ? LogoutResponseCode.cidNotFound
      : LogoutResponseCode.closed;
    this.send({ opcode: IscsiOpcode.logoutResponse, response, itt: pdu.itt, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN(), time2Wait: 0, time2Retain: 0, data: EMPTY });
    if (response === LogoutResponseCode.closed) {
      this.closed = true;
      this.socket.end();
    }
  }

  /**
   * Task management (§11.5, SAM-5 §7). Aborted tasks get no response; the TMF response goes
   * out once their I/O has finished, so nothing of theirs follows it. Resets and CLEAR TASK
   * SET reach every session logged in to the target and leave unit attentions behind.
   */
  private onTaskManagement(pdu: TaskManagementRequest): void {
    const answer = (response: number, after: readonly Task[] = []) => {
      const finish = () => this.send({ opcode: IscsiOpcode.taskManagementResponse, response, itt: pdu.itt, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN(), data: EMPTY });
      const running = after.map((t) => t.running).filter((r): r is Promise<void> => r !== undefined);
      if (running.length === 0) return finish();
      void Promise.allSettled(running).then(() => {
        if (!this.isClosed) finish();
      });
    };
    if (this.session!.type === 'discovery' || !this.unit) return this.reject(undefined, RejectReason.protocolError, 'tmf-in-discovery');
    const lun = decodeLun(pdu.lun);
    const fn = pdu.function;
    const peers = () => (this.session!.targetName !== undefined ? (this.ctx.sessions?.peers(this.session!.targetName) ?? [this]) : [this]);
    switch (fn) {
      case TaskFunction.abortTask: {
        const task = this.tasks.get(pdu.referencedTaskTag);
        if (task) return answer(TaskResponse.functionComplete, this.abortTasks((t) => t === task));
        return answer(this.abortNotStarted(pdu) ? TaskResponse.functionComplete : TaskResponse.taskDoesNotExist);
      }
      case TaskFunction.abortTaskSet:
        if (lun !== this.unit.lun) return answer(TaskResponse.lunDoesNotExist);
        return answer(TaskResponse.functionComplete, this.abortTasks((t) => t.lun === lun));
      case TaskFunction.clearTaskSet: {
        if (lun !== this.unit.lun) return answer(TaskResponse.lunDoesNotExist);
        const aborted: Task[] = [];
        for (const peer of peers()) aborted.push(...peer.clearTaskSet(lun, peer === this ? null : UnitAttentionAsc.commandsClearedByAnotherInitiator));
        return answer(TaskResponse.functionComplete, aborted);
      }
      case TaskFunction.logicalUnitReset: {
        if (lun !== this.unit.lun) return answer(TaskResponse.lunDoesNotExist);
        const aborted: Task[] = [];
        for (const peer of peers()) aborted.push(...peer.clearTaskSet(lun, UnitAttentionAsc.busDeviceResetFunction));
        this.unit.reset(); // SPC-2 reservations do not survive a LUN reset (persistent ones do)
        return answer(TaskResponse.functionComplete, aborted);
      }
      case TaskFunction.targetWarmReset:
      case TaskFunction.targetColdReset: {
        const aborted: Task[] = [];
        for (const peer of peers()) aborted.push(...peer.clearTaskSet(null, UnitAttentionAsc.powerOnOrReset));
        this.unit.reset();
        answer(TaskResponse.functionComplete, aborted);
        // Cold reset also ends every connection to the target (§11.5.1), after this response.
        if (fn === TaskFunction.targetColdReset) {
          void Promise.allSettled(aborted.map((t) => t.running)).then(() => {
            for (const peer of peers()) peer.endAfterFlush();
          });
        }
        return;
      }
      case TaskFunction.taskReassign:
        return answer(TaskResponse.reassignmentNotSupported); // needs ErrorRecoveryLevel 2
      default:
        return answer(TaskResponse.functionNotSupported); // CLEAR ACA (no ACA support) and unknown functions
    }
  }

  /**
   * Aborts this session's tasks on `lun` (every LUN when null) and, when `attention` is
   * given, queues that unit attention for this I_T nexus. Returns the aborted tasks.
   */
  clearTaskSet(lun: number | null, attention: AscPair | null): Task[] {
    const aborted = this.abortTasks((t) => lun === null || t.lun === lun);
    // 2F/00 only where commands were cleared; resets leave their attention on every nexus.
    if (attention && (attention !== UnitAttentionAsc.commandsClearedByAnotherInitiator || aborted.length > 0)) this.attentions.raise(attention);
    return aborted;
  }

  /** Sends what is queued, then closes (TARGET COLD RESET). */
  private endAfterFlush(): void {
    this.abortTasks(() => true);
    this.closed = true;
    this.socket.end();
  }

  /**
   * ABORT TASK of a command that has not started (§11.5.1): held behind a CmdSN gap, it is
   * dropped and its CmdSN still counts as received; not arrived but RefCmdSN inside the window
   * and below the TMF's CmdSN, that CmdSN counts as received (the command is ignored if it comes).
   */
  private abortNotStarted(pdu: TaskManagementRequest): boolean {
    const h = this.heldCommand(pdu.referencedTaskTag);
    if (h) {
      h.pdu = null;
      return true;
    }
    const ref = pdu.refCmdSN;
    if (!snLess(ref, pdu.cmdSN) || snLess(ref, this.expCmdSN) || snLess(this.maxCmdSNSent, ref)) return false;
    if (!this.held.has(ref)) this.held.set(ref, { pdu: null, bhs: EMPTY, dataOut: [], dataOutBytes: 0 });
    return true;
  }

  /** Marks matching tasks aborted (no response will be sent), forgets their pending Data-Out; matching held commands never run. */
  private abortTasks(match: (t: Task) => boolean): Task[] {
    for (const h of this.held.values()) {
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

  /** Target-initiated NOP-In on an idle connection; no byte back within the timeout drops it (dead peer). */
  private startPings(): void {
    const interval = this.ctx.nopInIntervalMs ?? 0;
    if (interval <= 0) return;
    const timeout = this.ctx.nopInTimeoutMs ?? interval;
    this.nopTimer = setInterval(() => {
      if (this.isClosed) return;
      const now = Date.now();
      if (this.ping) {
        if (now - this.ping.sentAt >= timeout) this.drop('nop-timeout');
        return;
      }
      if (now - this.lastReceived < interval) return;
      const ttt = this.nextTtt();
      this.ping = { ttt, sentAt: now };
      // StatSN is not advanced by a ping (§11.19.6): the NOP-In carries the next one.
      this.send({ opcode: IscsiOpcode.nopIn, lun: 0n, itt: RESERVED_TAG, ttt, statSN: this.statSN, expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN(), data: EMPTY });
    }, Math.max(10, Math.min(interval, timeout) / 2));
    this.nopTimer.unref();
  }

  /** Reject (§11.17): the offending header goes back as data; the connection stays up. */
  private reject(bhs: Buffer | undefined, reason: number, why: string): void {
    this.ctx.metrics.inc(M.rejects, { reason: why });
    this.ctx.metrics.inc(M.dropped, { reason: why });
    const header = bhs ?? this.currentBhs;
    this.send({ opcode: IscsiOpcode.reject, reason, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN(), dataSN: 0, data: Buffer.from(header) });
    this.ctx.log.debug({ remote: this.remote, reason: why, itt: header.length >= 48 ? bhsItt(header) : undefined }, 'iscsi reject');
  }

  private nextTtt(): number {
    const t = this.nextTag;
    this.nextTag = this.nextTag >= 0xfffffffe ? 1 : this.nextTag + 1;
    return t;
  }

  /**
   * Queues one PDU. Everything sent during one turn of the event loop stays corked in the
   * socket and leaves in one writev when the turn ends (setImmediate): at queue depth 32 the
   * answers to the commands of one socket read share a syscall and mostly a TCP segment,
   * where a writev per PDU cost ~30% of the JS thread (bench:iscsi, docs/iscsi.md). It also
   * keeps a PDU's header, data and padding in one segment where they fit: iPXE keeps a
   * single unacknowledged segment in flight and was seen dropping the data segment that
   * trailed a bare 48-byte header (an ~11 ms retransmission per read during boot).
   *
   * Backpressure: past SEND_BACKLOG_BYTES queued (a slow initiator), stop reading commands
   * until the socket drains. `written` is called when the PDU's bytes have left (or failed to).
   */
  private send(pdu: TargetPdu, written?: () => void): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    const chunks = encodePdu(pdu, this.digests, this.crc);
    if (!this.sendsCorked) {
      this.sendsCorked = true;
      socket.cork();
      setImmediate(this.flushSends);
    }
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) socket.write(chunks[i]!);
    // `written` runs once the kernel has the bytes (or the write failed): the data is no longer referenced.
    socket.write(chunks[last]!, written);
    if (socket.writableLength > SEND_BACKLOG_BYTES && !socket.isPaused()) socket.pause();
  }

  /** Set while this turn's PDUs sit corked in the socket. */
  private sendsCorked = false;

  /** Hands the corked PDUs to the kernel (end of the turn, or before the socket is destroyed). */
  private readonly flushSends = (): void => {
    if (!this.sendsCorked) return;
    this.sendsCorked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  private spawn(task: Task, fn: () => Promise<void>): void {
    const p: Promise<void> = fn()
      .catch((err: unknown) => this.fatal(err))
      .finally(() => this.inFlight.delete(p));
    task.running = p;
    this.inFlight.add(p);
  }

  private drop(reason: string): void {
    this.ctx.metrics.inc(M.dropped, { reason });
    this.ctx.log.debug({ remote: this.remote, reason }, 'iscsi connection dropped');
    this.closed = true;
    this.flushSends(); // a Reject sent just before still goes out
    this.socket.destroy();
  }

  private fatal(err: unknown): void {
    this.ctx.log.error({ remote: this.remote, err: (err as Error).stack ?? String(err) }, 'iscsi connection failed');
    this.drop('internal-error');
  }

  private teardown(): void {
    clearTimeout(this.loginTimer);
    clearInterval(this.nopTimer);
    this.closed = true;
    this.abortTasks(() => true);
    this.writes.clear();
    this.held.clear();
    this.textPending.clear();
    this.unit?.release(); // an SPC-2 reservation ends with its I_T nexus
    if (this.session) this.session.binding?.release?.();
    this.ctx.onClose(this.session?.tsih);
  }
}

const EMPTY = Buffer.alloc(0);

const MAX_KNOWN_NEXUSES = 4096;

/** I_T nexuses (initiator port name: initiator name + ISID) that have logged in to each device since the target started. */
const knownNexuses = new WeakMap<object, Set<string>>();

/**
 * The unit attention a new session starts with (SAM-5 §6.3, SPC-4 §5.14): an initiator port
 * the device has not seen since the target started gets 29/00 POWER ON, RESET, OR BUS DEVICE
 * RESET OCCURRED; one seen before (its earlier session ended: logout, drop, reinstatement)
 * gets 29/07 I_T NEXUS LOSS OCCURRED.
 */
function nexusAttention(s: EstablishedSession): AscPair {
  const device = s.binding!.device;
  let seen = knownNexuses.get(device);
  if (!seen) knownNexuses.set(device, (seen = new Set()));
  const nexus = `${s.initiatorName},i,0x${s.isid.toString(16).padStart(12, '0')}`;
  if (seen.has(nexus)) return UnitAttentionAsc.itNexusLoss;
  // Bounded memory: past MAX_KNOWN_NEXUSES the oldest is forgotten (it would see 29/00 again).
  if (seen.size >= MAX_KNOWN_NEXUSES) seen.delete(seen.values().next().value!);
  seen.add(nexus);
  return UnitAttentionAsc.powerOnOrReset;
}

/** ABORTED COMMAND additional sense per Data-Out problem (RFC 7143 §11.4.7.2, SPC-4 table 28). */
const DATA_OUT_SENSE: Record<string, AscPair> = {
  'data-out-digest': { asc: 0x47, ascq: 0x05 }, // PROTOCOL SERVICE CRC ERROR
  'data-out-datasn': { asc: 0x47, ascq: 0x05 }, // a DataSN gap implies a lost (digest-failed) PDU, §7.9
  'data-out-offset': { asc: 0x4b, ascq: 0x05 }, // DATA OFFSET ERROR
  'data-out-unsolicited-overrun': { asc: 0x0c, ascq: 0x0c }, // UNEXPECTED UNSOLICITED DATA
  'data-out-r2t-overrun': { asc: 0x4b, ascq: 0x00 }, // DATA PHASE ERROR
  'data-out-unknown-ttt': { asc: 0x4b, ascq: 0x00 },
  'data-out-missing-final': { asc: 0x4b, ascq: 0x00 },
  'data-out-early-final': { asc: 0x4b, ascq: 0x00 },
};

/** Socket reads at least this long that end inside a PDU do not force an immediate ACK (see onData). */
const QUICK_ACK_MAX_READ = 16 * 1024;

/** Bytes queued for the initiator above which the connection stops reading new commands. */
const SEND_BACKLOG_BYTES = 4 * 1024 * 1024;

/**
 * The LUN number of an 8-byte LUN field (SAM-5 §4.7): peripheral (00b) or flat (01b) addressing
 * at the first level and nothing below; -1 for anything else (no such LUN).
 */
export function decodeLun(lun: bigint): number {
  const first = Number(lun >> 48n);
  if ((lun & 0xffffffffffffn) !== 0n) return -1;
  const method = first >> 14;
  if (method === 0) return first >> 8 === 0 ? first & 0xff : -1;
  if (method === 1) return first & 0x3fff;
  return -1;
}

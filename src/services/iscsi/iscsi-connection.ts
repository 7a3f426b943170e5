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
 *
 * This class coordinates; the parts live beside it: command-window.ts (CmdSN ordering and
 * window), scsi-tasks.ts (SCSI commands, Data-In, Data-Out/R2T), task-management.ts,
 * text-exchange.ts, nop-pinger.ts and pdu-sender.ts (batched sends).
 */
import type { Socket } from 'node:net';
import { isDisklessError } from '../../errors/index.js';
import { IscsiOpcode, LogoutReason, LogoutResponseCode, RejectReason, RESERVED_TAG } from '../../wire/iscsi/iscsi-constants.js';
import { bhsItt, parsePdu, type IscsiPdu, type LogoutRequest, type NopOut, type TargetPdu, type TaskManagementRequest } from '../../wire/iscsi/iscsi-pdu.js';
import { PduReader } from '../../wire/iscsi/pdu-framing.js';
import { Crc32c } from '../../wire/checksum/crc32c.js';
import type { AscPair } from '../../wire/scsi/scsi-constants.js';
import { LoginNegotiator, type EstablishedSession } from './login-negotiator.js';
import { LogicalUnit, unitIdentity } from './logical-unit.js';
import { UnitAttentionAsc, UnitAttentions } from './unit-attention.js';
import { ISCSI_METRICS as M, type ConnectionContext } from './connection-context.js';
import { CommandWindow, type OrderedPdu } from './command-window.js';
import { nexusAttention } from './nexus-attention.js';
import { NopPinger } from './nop-pinger.js';
import { PduSender } from './pdu-sender.js';
import { ScsiTasks } from './scsi-tasks.js';
import { TextExchange } from './text-exchange.js';
import { handleTaskManagement, type Task } from './task-management.js';

export type { ConnectionContext, SessionRegistry } from './connection-context.js';
export { decodeLun } from './decode-lun.js';

/** One accepted socket and its session, from login to close; see the file comment. */
export class IscsiConnection {
  private readonly reader: PduReader;
  private readonly negotiator: LoginNegotiator;
  private session: EstablishedSession | null = null;
  private unit: LogicalUnit | null = null;
  private statSN = 0;
  /** ExpCmdSN, MaxCmdSN and the PDUs held behind a CmdSN gap. */
  private readonly window: CommandWindow;
  private readonly attentions = new UnitAttentions();
  /** SCSI commands and their tasks, reads and writes. */
  private readonly scsi: ScsiTasks;
  private readonly crc: Crc32c;
  /** Encodes (with the negotiated digests) and batches what this connection sends. */
  private readonly sender: PduSender;
  /** Target pings on an idle connection (dead-peer detection). */
  private readonly pinger: NopPinger;
  /** Text requests (SendTargets) and the answers still being fetched. */
  private readonly text: TextExchange;
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
    this.sender = new PduSender(socket, this.crc);
    this.window = new CommandWindow(ctx.metrics, ctx.login);
    this.scsi = new ScsiTasks(ctx, this.window, this.attentions, {
      reject: (bhs, reason, why) => this.reject(bhs, reason, why),
      send: (pdu, written) => this.send(pdu, written),
      nextStatSN: () => this.nextStatSN(),
      statSN: () => this.statSN,
      maxCmdSN: () => this.maxCmdSN(),
      nextTtt: () => this.nextTtt(),
      closed: () => this.closed,
      fatal: (err) => this.fatal(err),
    });
    this.pinger = new NopPinger(ctx, {
      isClosed: () => this.isClosed,
      drop: (reason) => this.drop(reason),
      nextTtt: () => this.nextTtt(),
      // StatSN is not advanced by a ping (§11.19.6): the NOP-In carries the next one.
      sendPing: (ttt) => this.send({ opcode: IscsiOpcode.nopIn, lun: 0n, itt: RESERVED_TAG, ttt, statSN: this.statSN, expCmdSN: this.window.expCmdSN, maxCmdSN: this.maxCmdSN(), data: EMPTY }),
    });
    this.text = new TextExchange(ctx, socket, {
      reject: (reason, why) => this.reject(undefined, reason, why),
      nextTtt: () => this.nextTtt(),
      sequenceNumbers: () => ({ statSN: this.nextStatSN(), expCmdSN: this.window.expCmdSN, maxCmdSN: this.maxCmdSN() }),
      send: (pdu) => this.send(pdu),
    });
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
    this.scsi.abortTasks(() => true);
    this.closed = true;
    this.sender.flushSends();
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
    this.send({ opcode: IscsiOpcode.asyncMessage, lun: 0n, statSN: this.nextStatSN(), expCmdSN: this.window.expCmdSN, maxCmdSN: this.maxCmdSN(), asyncEvent: 1, asyncVCode: 0, parameter1: 0, parameter2: 0, parameter3: seconds, data: EMPTY });
    return true;
  }

  private onData(chunk: Buffer): void {
    this.pinger.received(); // any byte from the peer proves it is alive
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
      if ((raw.bhs[0]! & 0x3f) === IscsiOpcode.dataOut && this.session) this.scsi.failWrite(bhsItt(raw.bhs), 'data-out-digest');
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
        return this.scsi.onDataOut(pdu);
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
    this.scsi.session = s;
    this.statSN = s.nextStatSN;
    this.window.start(s.expCmdSN);
    this.reader.maxDataSegmentLength = s.parameters.targetMaxRecvDataSegmentLength;
    // Digests start with the first PDU after the final login response (§13.1).
    this.sender.digests = { header: s.parameters.headerDigest, data: s.parameters.dataDigest };
    this.reader.digests = this.sender.digests;
    this.ctx.sessions?.established(this, s);
    this.pinger.start();
    if (s.binding && s.targetName) {
      this.unit = new LogicalUnit(s.binding.device, s.binding.readOnly, unitIdentity(s.targetName, this.ctx.login.portalGroupTag, s.binding.serial), { lun: s.binding.lun ?? 0, initiator: s.initiatorName, isid: s.isid }, this.ctx.readBuffers);
    }
    this.scsi.unit = this.unit;
    if (this.unit) this.attentions.raise(nexusAttention(s));
    this.ctx.metrics.inc(M.logins, { result: 'success' });
    this.ctx.log.info({ remote: this.remote, initiator: s.initiatorName, target: s.targetName, type: s.type, auth: s.binding?.chap ? (s.binding.mutualChap ? 'CHAP+mutual' : 'CHAP') : 'None', tsih: s.tsih, headerDigest: this.sender.digests.header, dataDigest: this.sender.digests.data }, 'iscsi session established');
  }

  /**
   * Command ordering (§3.2.2.1, §4.2.2.1): immediate PDUs run at once; a non-immediate one runs
   * when its CmdSN is ExpCmdSN, then whatever waited behind it, in CmdSN order. One that comes
   * ahead of a gap is held until the gap fills (at most a window's worth: only CmdSNs in
   * [ExpCmdSN, MaxCmdSN] are taken); outside the window, or a CmdSN already held, it is
   * dropped silently and counted.
   */
  private ordered(pdu: OrderedPdu, bhs: Buffer): void | Promise<void> {
    if (!this.window.admit(pdu, bhs)) return;
    const done = this.dispatch(pdu);
    if (this.window.held.size === 0) return done;
    return done ? done.then(() => this.deliverHeld()) : this.deliverHeld();
  }

  private dispatch(pdu: OrderedPdu): void | Promise<void> {
    switch (pdu.opcode) {
      case IscsiOpcode.scsiCommand:
        return this.scsi.onCommand(pdu);
      case IscsiOpcode.nopOut:
        return this.onNopOut(pdu);
      case IscsiOpcode.textRequest:
        return this.text.handle(pdu, this.session!);
      case IscsiOpcode.logoutRequest:
        return this.onLogout(pdu);
      case IscsiOpcode.taskManagementRequest:
        return this.onTaskManagement(pdu);
    }
  }

  /** Runs the held PDUs the gap no longer blocks, in CmdSN order, each followed by the Data-Out that came for it. */
  private async deliverHeld(): Promise<void> {
    for (let h = this.window.held.get(this.window.expCmdSN); h && !this.closed; h = this.window.held.get(this.window.expCmdSN)) {
      this.window.held.delete(this.window.expCmdSN);
      this.window.expCmdSN = (this.window.expCmdSN + 1) >>> 0;
      if (!h.pdu) continue;
      this.currentBhs = h.bhs;
      await this.dispatch(h.pdu);
      for (const d of h.dataOut) {
        if (typeof d === 'string') this.scsi.failWrite(h.pdu.itt, d);
        else this.scsi.onDataOut(d);
      }
    }
  }

  /** MaxCmdSN from the queue depth and the tasks outstanding (CommandWindow.maxCmdSN). */
  private maxCmdSN(): number {
    return this.window.maxCmdSN(this.scsi.tasks.size);
  }

  private nextStatSN(): number {
    const sn = this.statSN;
    this.statSN = (this.statSN + 1) >>> 0;
    return sn;
  }

  private onNopOut(pdu: NopOut): void {
    if (pdu.itt === RESERVED_TAG) return; // an answer to a target ping (§11.18): nothing to send (onData already cleared it)
    this.send({ opcode: IscsiOpcode.nopIn, lun: pdu.lun, itt: pdu.itt, ttt: RESERVED_TAG, statSN: this.nextStatSN(), expCmdSN: this.window.expCmdSN, maxCmdSN: this.maxCmdSN(), data: pdu.data });
  }

  private async onLogout(pdu: LogoutRequest): Promise<void> {
    await Promise.allSettled([...this.scsi.inFlight]);
    // One connection per session: closing the connection closes the session; its CID must be ours.
    const response =
      pdu.reason === LogoutReason.removeConnectionForRecovery ? LogoutResponseCode.recoveryNotSupported
      : pdu.reason === LogoutReason.closeConnection && pdu.cid !== this.session!.cid ? LogoutResponseCode.cidNotFound
      : LogoutResponseCode.closed;
    this.send({ opcode: IscsiOpcode.logoutResponse, response, itt: pdu.itt, statSN: this.nextStatSN(), expCmdSN: this.window.expCmdSN, maxCmdSN: this.maxCmdSN(), time2Wait: 0, time2Retain: 0, data: EMPTY });
    if (response === LogoutResponseCode.closed) {
      this.closed = true;
      this.socket.end();
    }
  }

  /** Task management (§11.5, task-management.ts); rejected in a discovery session. */
  private onTaskManagement(pdu: TaskManagementRequest): void {
    if (this.session!.type === 'discovery' || !this.unit) return this.reject(undefined, RejectReason.protocolError, 'tmf-in-discovery');
    handleTaskManagement(
      {
        self: this,
        unit: this.unit,
        isClosed: () => this.isClosed,
        peers: () => (this.session!.targetName !== undefined ? (this.ctx.sessions?.peers(this.session!.targetName) ?? [this]) : [this]),
        task: (itt) => this.scsi.tasks.get(itt),
        abortTasks: (match) => this.scsi.abortTasks(match),
        abortNotStarted: (p) => this.abortNotStarted(p),
        sendResponse: (response) => this.send({ opcode: IscsiOpcode.taskManagementResponse, response, itt: pdu.itt, statSN: this.nextStatSN(), expCmdSN: this.window.expCmdSN, maxCmdSN: this.maxCmdSN(), data: EMPTY }),
      },
      pdu,
    );
  }

  /**
   * Aborts this session's tasks on `lun` (every LUN when null) and, when `attention` is
   * given, queues that unit attention for this I_T nexus. Returns the aborted tasks.
   */
  clearTaskSet(lun: number | null, attention: AscPair | null): Task[] {
    const aborted = this.scsi.abortTasks((t) => lun === null || t.lun === lun);
    // 2F/00 only where commands were cleared; resets leave their attention on every nexus.
    if (attention && (attention !== UnitAttentionAsc.commandsClearedByAnotherInitiator || aborted.length > 0)) this.attentions.raise(attention);
    return aborted;
  }

  /** Sends what is queued, then closes (TARGET COLD RESET of this or another session, task-management.ts). */
  endAfterFlush(): void {
    this.scsi.abortTasks(() => true);
    this.closed = true;
    this.socket.end();
  }

  /**
   * ABORT TASK of a command that has not started (§11.5.1): held behind a CmdSN gap, it is
   * dropped and its CmdSN still counts as received; not arrived but RefCmdSN inside the window
   * and below the TMF's CmdSN, that CmdSN counts as received (the command is ignored if it comes).
   */
  private abortNotStarted(pdu: TaskManagementRequest): boolean {
    const h = this.window.heldCommand(pdu.referencedTaskTag);
    if (h) {
      h.pdu = null;
      return true;
    }
    return this.window.skipNotArrived(pdu.refCmdSN, pdu.cmdSN);
  }

  /** Reject (§11.17): the offending header goes back as data; the connection stays up. */
  private reject(bhs: Buffer | undefined, reason: number, why: string): void {
    this.ctx.metrics.inc(M.rejects, { reason: why });
    this.ctx.metrics.inc(M.dropped, { reason: why });
    const header = bhs ?? this.currentBhs;
    this.send({ opcode: IscsiOpcode.reject, reason, statSN: this.nextStatSN(), expCmdSN: this.window.expCmdSN, maxCmdSN: this.maxCmdSN(), dataSN: 0, data: Buffer.from(header) });
    this.ctx.log.debug({ remote: this.remote, reason: why, itt: header.length >= 48 ? bhsItt(header) : undefined }, 'iscsi reject');
  }

  private nextTtt(): number {
    const t = this.nextTag;
    this.nextTag = this.nextTag >= 0xfffffffe ? 1 : this.nextTag + 1;
    return t;
  }

  /** Queues one PDU (PduSender.send: batched per event-loop turn, backpressure on a slow initiator). */
  private send(pdu: TargetPdu, written?: () => void): void {
    this.sender.send(pdu, written);
  }

  private drop(reason: string): void {
    this.ctx.metrics.inc(M.dropped, { reason });
    this.ctx.log.debug({ remote: this.remote, reason }, 'iscsi connection dropped');
    this.closed = true;
    this.sender.flushSends(); // a Reject sent just before still goes out
    this.socket.destroy();
  }

  private fatal(err: unknown): void {
    this.ctx.log.error({ remote: this.remote, err: (err as Error).stack ?? String(err) }, 'iscsi connection failed');
    this.drop('internal-error');
  }

  private teardown(): void {
    clearTimeout(this.loginTimer);
    this.pinger.stop();
    this.closed = true;
    this.scsi.abortTasks(() => true);
    this.scsi.writes.clear();
    this.window.held.clear();
    this.text.clear();
    this.unit?.release(); // an SPC-2 reservation ends with its I_T nexus
    if (this.session) this.session.binding?.release?.();
    this.ctx.onClose(this.session?.tsih);
  }
}

const EMPTY = Buffer.alloc(0);

/** Socket reads at least this long that end inside a PDU do not force an immediate ACK (see onData). */
const QUICK_ACK_MAX_READ = 16 * 1024;

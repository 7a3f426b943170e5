/**
 * The read-only TFTP server: RFC 1350 with option negotiation (RFC 2347), blksize (RFC 2348),
 * tsize and timeout (RFC 2349) and windowsize (RFC 7440). Built once by the composition root
 * from config `tftp`; firmware fetches iPXE through it.
 *
 * Each read request gets its own UDP socket on an ephemeral port (the server's TID, RFC 1350
 * §4), connected to the client's address and port: the kernel then delivers only the client's
 * packets to it (packets from any other TID are discarded, as §4 asks, by the kernel and so
 * are not answered with ERROR 5) and sends need no per-packet address lookup. The protocol
 * logic is the pure TftpTransfer; this class only moves bytes and runs the timer. The transfer
 * socket is the native one of the addon when it is built (an ACK arrives as a block number, a
 * window leaves in one sendmmsg), else node:dgram: see transfer-channel.ts. Requests
 * that are refused get an ERROR packet from the listening socket and are counted in
 * diskless_tftp_refused_total{reason}; packets that are not answered at all are counted in
 * diskless_tftp_dropped_total{reason}.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { close as closeFd } from 'node:fs';
import { isIPv6 } from 'node:net';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import { readRequestOptions } from '../../wire/tftp/tftp-options.js';
import { decodeTftpPacket, encodeError, encodeTftpPacket, TftpErrorCode, TftpMode, TftpOpcode, type TftpRequestPacket } from '../../wire/tftp/tftp-packet.js';
import type { Service } from '../service.js';
import { FileBlockSource, NetasciiBlockSource, type BlockSource } from './block-source.js';
import { negotiateOptions } from './negotiate-options.js';
import { openInRoot, realRoot } from './open-in-root.js';
import { RefusalReason } from './requested-name.js';
import { TftpTransfer, type TransferAction } from './tftp-transfer.js';
import { defaultTransport, openTransferChannel, type TransferChannel, type TransferTransport } from './transfer-channel.js';
import { resolveTftpServerOptions, type ResolvedTftpServerOptions, type TftpServerOptions } from './tftp-server-options.js';

export { tftpServerDefaults, type TftpServerOptions } from './tftp-server-options.js';

/** Most packets handed to the channel in one sendBatch call. */
const BATCH_MAX = 256;
const METRIC = {
  requests: 'diskless_tftp_requests_total',
  refused: 'diskless_tftp_refused_total',
  dropped: 'diskless_tftp_dropped_total',
  transfers: 'diskless_tftp_transfers_total',
  active: 'diskless_tftp_active_transfers',
  blocks: 'diskless_tftp_blocks_sent_total',
  busyPoll: 'diskless_tftp_busy_poll_total',
  retransmitted: 'diskless_tftp_blocks_retransmitted_total',
} as const;

interface Transfer {
  readonly key: string;
  readonly filename: string;
  readonly channel: TransferChannel;
  readonly machine: TftpTransfer;
  readonly source: BlockSource;
  readonly fd: number;
  readonly optionAck: Buffer | undefined;
  readonly startedAt: number;
  /** The retransmission timer; it is re-armed lazily (see armTimer). */
  timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires (performance.now() ms). */
  timerDue: number;
  /** When the retransmission is due: moved forward by every send, without touching the timer. */
  deadline: number;
  /** Reused array of the packets of one sendBatch call. */
  readonly batch: Buffer[];
  /** Reused array of the staged window (native channel), and its first block (0: none). */
  readonly stageBatch: Buffer[];
  stagedFirst: number;
  /** Bumped by every send action, so a send loop resumed after an await knows it was superseded. */
  generation: number;
  /** Blocks sent so far; added to the metric when the transfer ends (keeps the per-ACK path lean). */
  blocksSent: number;
  closed: boolean;
}

export class TftpServer implements Service {
  readonly name = 'tftp';
  private readonly options: ResolvedTftpServerOptions;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private socket: Socket | undefined;
  private rootReal = '';
  /** Transfers by client address:port, including ones still opening their file (value undefined). */
  private readonly transfers = new Map<string, Transfer | undefined>();
  private stopping = false;
  private readonly transportUsed: TransferTransport;

  constructor(options: TftpServerOptions) {
    this.options = resolveTftpServerOptions(options);
    this.log = options.log.child({ service: 'tftp' });
    this.metrics = options.metrics;
    const o = this.options;
    this.transportUsed = o.transport === 'auto' ? defaultTransport() : o.transport;
  }

  /** The transfer socket implementation in use ('native' or 'dgram'). */
  get transport(): TransferTransport {
    return this.transportUsed;
  }

  /** The bound port (useful with port 0); 0 before start. */
  get port(): number {
    return this.socket?.address().port ?? 0;
  }

  /** Transfers in progress. */
  get activeTransfers(): number {
    return this.transfers.size;
  }

  async start(): Promise<void> {
    if (this.socket) return;
    this.stopping = false;
    this.rootReal = await realRoot(this.options.root);
    const socket = createSocket({ type: isIPv6(this.options.address) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.options.port, this.options.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.log.error({ err }, 'tftp listening socket error'));
    socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
    this.socket = socket;
    this.log.info({ address: this.options.address, port: this.port, root: this.rootReal }, 'tftp server listening');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const socket = this.socket;
    this.socket = undefined;
    for (const t of this.transfers.values()) if (t) this.finish(t, 'stopped', 'server shutting down');
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private onRequest(msg: Buffer, rinfo: RemoteInfo): void {
    let request: TftpRequestPacket;
    try {
      const packet = decodeTftpPacket(msg);
      if (packet.opcode !== TftpOpcode.readRequest && packet.opcode !== TftpOpcode.writeRequest) {
        this.metrics.inc(METRIC.dropped, { reason: 'not_a_request' });
        return;
      }
      request = packet;
    } catch (err) {
      const opcode = msg.length >= 2 ? msg.readUInt16BE(0) : -1;
      if (opcode === TftpOpcode.readRequest || opcode === TftpOpcode.writeRequest) {
        // A request we cannot read (bad mode, missing NUL, NUL inside the name...): say so.
        this.refuse(rinfo, TftpErrorCode.illegalOperation, isDisklessError(err) && err.code === 'TFTP_BAD_FIELD' ? RefusalReason.badMode : 'malformed', (err as Error).message);
      } else this.metrics.inc(METRIC.dropped, { reason: 'malformed' });
      return;
    }
    this.metrics.inc(METRIC.requests, { op: request.opcode === TftpOpcode.readRequest ? 'read' : 'write' });
    if (request.opcode === TftpOpcode.writeRequest) {
      this.refuse(rinfo, TftpErrorCode.accessViolation, RefusalReason.writeRequest, 'this server is read-only');
      return;
    }
    const key = `${rinfo.address}:${rinfo.port}`;
    if (this.transfers.has(key)) {
      // The client resent its request before our first answer reached it: keep the one transfer.
      this.metrics.inc(METRIC.dropped, { reason: 'duplicate_request' });
      return;
    }
    this.transfers.set(key, undefined);
    this.startTransfer(key, request, rinfo).catch((err: unknown) => {
      this.transfers.delete(key);
      this.refuseError(rinfo, err);
    });
  }

  private async startTransfer(key: string, request: TftpRequestPacket, rinfo: RemoteInfo): Promise<void> {
    const mode = request.mode.toLowerCase();
    if (mode !== TftpMode.octet && mode !== TftpMode.netascii) {
      throw new DisklessError('TFTP_BAD_FIELD', `cannot read a file in mode ${mode}`, { field: 'mode', value: mode, allowed: [TftpMode.octet, TftpMode.netascii], reason: RefusalReason.badMode });
    }
    const reading = readRequestOptions(request.options);
    for (const o of reading.ignored) this.metrics.inc('diskless_tftp_options_ignored_total', { reason: o.reason });
    const file = await openInRoot(this.rootReal, request.filename);
    let source: BlockSource;
    let channel: TransferChannel | undefined;
    try {
      const probe = negotiateOptions(reading.requested, this.options, undefined);
      source = mode === TftpMode.netascii ? await NetasciiBlockSource.open(file.fd, file.size, probe.blockSize) : new FileBlockSource(file.fd, file.size, probe.blockSize, probe.windowSize);
      const negotiated = negotiateOptions(reading.requested, this.options, source.size);
      channel = await openTransferChannel(this.transportUsed, this.options.address, rinfo.address, rinfo.port, rinfo.family === 'IPv6');
      if (this.stopping) throw new DisklessError('TFTP_FILE_CHANGED', 'server stopping', { field: 'server' });
      const machine = new TftpTransfer({
        size: source.size,
        blockSize: negotiated.blockSize,
        windowSize: negotiated.windowSize,
        optionAck: negotiated.optionAck.length > 0,
        timeoutMs: negotiated.timeoutSeconds !== undefined ? negotiated.timeoutSeconds * 1000 : this.options.timeoutMs,
        retries: this.options.retries,
      });
      const t: Transfer = {
        key,
        filename: request.filename,
        channel,
        machine,
        source,
        fd: file.fd,
        optionAck: negotiated.optionAck.length > 0 ? encodeTftpPacket({ opcode: TftpOpcode.optionAck, options: negotiated.optionAck }) : undefined,
        startedAt: performance.now(),
        timer: undefined,
        timerDue: 0,
        deadline: 0,
        batch: [],
        stageBatch: [],
        stagedFirst: 0,
        generation: 0,
        blocksSent: 0,
        closed: false,
      };
      this.transfers.set(key, t);
      this.metrics.set(METRIC.active, this.transfers.size);
      channel.start({
        ack: (block, sent) => this.onAck(t, block, sent),
        packet: (msg) => this.onTransferPacket(t, msg),
        error: (err) => {
          this.log.debug({ err, client: key }, 'tftp transfer socket error');
          this.finish(t, 'client_gone');
        },
      });
      this.log.debug({ client: key, file: file.path, size: source.size, blockSize: negotiated.blockSize, windowSize: negotiated.windowSize, ignored: reading.ignored }, 'tftp read request');
      this.execute(t, machine.start());
    } catch (err) {
      channel?.close();
      closeFd(file.fd, () => undefined);
      throw err;
    }
  }

  /**
   * The hot path: one ACK from the client's TID. `staged` >= 0 says the channel already sent
   * that many packets of the staged window when this ACK arrived; the machine still decides,
   * and when it asks for exactly that window the send carries on after them.
   */
  private onAck(t: Transfer, block: number, staged: number): void {
    if (t.closed) return;
    const action = t.machine.onAck(block);
    const verdict = t.machine.lastVerdict;
    if (verdict === 'stale' || (verdict === 'duplicate' && action.kind === 'none')) this.metrics.inc(METRIC.dropped, { reason: `${verdict}_ack` });
    if (staged >= 0) {
      const first = t.stagedFirst;
      t.stagedFirst = 0;
      if (action.kind === 'send-data' && action.first === first) {
        this.execute(t, action, staged);
        return;
      }
      // Cannot happen while the staging below mirrors the machine; if it ever does, the
      // staged packets were merely early duplicates and the machine's action is carried out.
      this.metrics.inc(METRIC.dropped, { reason: 'stage_mismatch' });
    }
    this.execute(t, action);
  }

  /** Any datagram from the client's TID other than an ACK. */
  private onTransferPacket(t: Transfer, msg: Buffer): void {
    if (t.closed) return;
    let opcode: number;
    try {
      opcode = decodeTftpPacket(msg).opcode;
    } catch {
      this.metrics.inc(METRIC.dropped, { reason: 'malformed' });
      return;
    }
    if (opcode === TftpOpcode.error) {
      t.machine.onClientError();
      this.finish(t, 'client_error');
    } else this.metrics.inc(METRIC.dropped, { reason: 'unexpected_opcode' });
  }

  /** Carries out an action of the machine; `alreadySent` packets of a send-data left with the staged window. */
  private execute(t: Transfer, action: TransferAction, alreadySent = 0): void {
    switch (action.kind) {
      case 'none':
        return;
      case 'send-oack':
        t.channel.send(t.optionAck!);
        this.armTimer(t);
        return;
      case 'send-data': {
        const count = action.last - action.first + 1;
        t.blocksSent += count;
        if (action.retransmit) this.metrics.inc(METRIC.retransmitted, {}, count);
        t.source.release(action.first);
        const generation = ++t.generation;
        if (action.first + alreadySent <= action.last) this.sendRange(t, action.first + alreadySent, action.last, generation);
        if (!t.closed) {
          this.stageNext(t, action.last);
          this.armTimer(t);
        }
        return;
      }
      case 'done':
        this.finish(t, 'complete');
        return;
      case 'abort':
        this.finish(t, 'timeout', 'timed out');
        return;
    }
  }

  /**
   * Sends blocks first..last, the blocks in memory in one sendBatch call (one sendmmsg on the
   * native channel); synchronous while the blocks are in memory and the socket keeps up, else
   * resumed after the read or when the socket has room, unless a newer send superseded it.
   */
  private sendRange(t: Transfer, first: number, last: number, generation: number): void {
    let b = first;
    while (b <= last) {
      let n = 0;
      for (; n < BATCH_MAX && b + n <= last; n++) {
        const packet = t.source.packet(b + n);
        if (packet === undefined) break;
        t.batch[n] = packet;
      }
      if (n > 0) {
        t.source.readAhead(b + n - 1);
        let sent: number;
        try {
          sent = t.channel.sendBatch(t.batch, n);
        } catch (err) {
          this.log.debug({ err, client: t.key }, 'tftp transfer send failed');
          this.finish(t, 'client_gone');
          return;
        }
        if (sent < n) {
          const resume = b + sent;
          t.channel.whenWritable(() => {
            if (!t.closed && t.generation === generation) this.sendRange(t, resume, last, generation);
          });
          return;
        }
        b += n;
        continue;
      }
      const missing = b;
      t.source.load(missing).then(
        () => {
          if (!t.closed && t.generation === generation) this.sendRange(t, missing, last, generation);
        },
        (err: unknown) => this.fail(t, err),
      );
      return;
    }
  }

  /**
   * Native channel: stages the window the machine will ask for when the client ACKs `last`
   * (RFC 7440: the next windowSize blocks after the highest ACK), as far as those blocks are
   * in memory, so the addon sends it the moment that ACK arrives. Nothing after the last block.
   */
  private stageNext(t: Transfer, last: number): void {
    const stage = t.channel.stage;
    if (stage === undefined) return;
    const total = t.machine.totalBlocks;
    let n = 0;
    if (last < total) {
      const end = Math.min(last + t.machine.plan.windowSize, total);
      for (let b = last + 1; b <= end && n < BATCH_MAX; b++, n++) {
        const packet = t.source.packet(b);
        if (packet === undefined) break;
        t.stageBatch[n] = packet;
      }
    }
    t.stagedFirst = n > 0 ? last + 1 : 0;
    // Busy-polling only pays while this transfer has the machine to itself.
    const spin = this.transfers.size === 1 ? this.options.busyPollMicros : 0;
    try {
      stage(n > 0 ? TftpTransfer.wireBlock(last) : -1, t.stageBatch, n, spin);
    } catch (err) {
      t.stagedFirst = 0;
      this.log.debug({ err, client: t.key }, 'tftp transfer stage failed');
      this.finish(t, 'client_gone');
    }
  }

  /**
   * Sets the retransmission deadline to now + the machine's timeout. The timer itself is only
   * touched when it would fire too late (first arm, or a shorter timeout after progress): on
   * the per-ACK path this is one clock read. When it fires early it re-arms for what is left.
   */
  private armTimer(t: Transfer): void {
    const now = performance.now();
    t.deadline = now + t.machine.timeoutMs;
    if (t.timer !== undefined && t.timerDue <= t.deadline) return;
    if (t.timer !== undefined) clearTimeout(t.timer);
    this.setTimer(t, t.deadline - now);
  }

  private setTimer(t: Transfer, ms: number): void {
    t.timerDue = performance.now() + ms;
    t.timer = setTimeout(() => {
      t.timer = undefined;
      if (t.closed) return;
      const left = t.deadline - performance.now();
      if (left >= 1) this.setTimer(t, left);
      else this.execute(t, t.machine.onTimeout());
    }, ms);
  }

  private fail(t: Transfer, err: unknown): void {
    this.log.warn({ err, client: t.key, file: t.filename }, 'tftp transfer failed');
    this.finish(t, 'io_error', 'read error');
  }

  /** Ends a transfer: optional ERROR 0 to the client, timer, socket and file closed, metrics. */
  private finish(t: Transfer, result: string, errorMessage?: string): void {
    if (t.closed) return;
    t.closed = true;
    if (t.timer !== undefined) clearTimeout(t.timer);
    t.timer = undefined;
    t.channel.close(errorMessage !== undefined ? encodeError(TftpErrorCode.notDefined, errorMessage) : undefined);
    closeFd(t.fd, () => undefined);
    this.transfers.delete(t.key);
    this.metrics.inc(METRIC.transfers, { result });
    this.metrics.inc(METRIC.blocks, {}, t.blocksSent);
    const spins = t.channel.spinStatistics();
    if (spins.spinHits > 0) this.metrics.inc(METRIC.busyPoll, { result: 'hit' }, spins.spinHits);
    if (spins.spinMisses > 0) this.metrics.inc(METRIC.busyPoll, { result: 'miss' }, spins.spinMisses);
    this.metrics.set(METRIC.active, this.transfers.size);
    this.log.debug({ client: t.key, file: t.filename, result, blocks: t.machine.ackedBlocks, ms: Math.round(performance.now() - t.startedAt) }, 'tftp transfer finished');
  }

  private refuseError(rinfo: RemoteInfo, err: unknown): void {
    if (!isDisklessError(err)) {
      this.log.error({ err }, 'tftp request failed');
      this.refuse(rinfo, TftpErrorCode.notDefined, 'internal', 'internal error');
      return;
    }
    const reason = typeof err.data.reason === 'string' ? err.data.reason : err.code.toLowerCase();
    switch (err.code) {
      case 'TFTP_FILE_NOT_FOUND':
        this.refuse(rinfo, TftpErrorCode.fileNotFound, RefusalReason.notFound, 'file not found');
        return;
      case 'TFTP_PATH_REFUSED':
        this.refuse(rinfo, TftpErrorCode.accessViolation, reason, 'access violation');
        return;
      case 'TFTP_DUPLICATE_OPTION':
        this.refuse(rinfo, TftpErrorCode.optionNegotiationFailed, RefusalReason.badOption, err.message);
        return;
      case 'TFTP_BAD_FIELD':
        this.refuse(rinfo, TftpErrorCode.illegalOperation, reason, err.message);
        return;
      case 'TFTP_FILE_TOO_LARGE':
        this.refuse(rinfo, TftpErrorCode.notDefined, RefusalReason.tooLarge, err.message);
        return;
      default:
        this.refuse(rinfo, TftpErrorCode.notDefined, reason, 'cannot serve the file');
    }
  }

  /** Answers a request with an ERROR packet from the listening socket and counts it. */
  private refuse(rinfo: RemoteInfo, code: TftpErrorCode, reason: string, message: string): void {
    this.metrics.inc(METRIC.refused, { reason });
    this.log.debug({ client: `${rinfo.address}:${rinfo.port}`, reason, code }, 'tftp request refused');
    const packet = encodeError(code, message.replace(/[^\x20-\x7e]/g, '?'));
    this.socket?.send(packet, rinfo.port, rinfo.address);
  }
}

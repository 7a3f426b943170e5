/**
 * The sending side of one TFTP read transfer as a pure state machine: no sockets, no timers,
 * no file I/O. TftpServer feeds it ACKs and timeouts and carries out the actions it returns
 * (send the OACK, send blocks first..last, finish, abort).
 *
 * Blocks are numbered absolutely from 1 here; the wire carries `abs & 0xffff`, so block
 * 65536 goes out as 0 (rollover to 0, what iPXE, atftp and tftp-hpa expect). An ACK's wire
 * number is mapped back to the one absolute block in [lastAcked, lastSent] with the same low
 * 16 bits; that interval holds at most 65536 blocks (windowsize <= 65535), so the mapping is
 * unique.
 *
 * Windowing (RFC 7440): up to `windowSize` blocks are sent after each acknowledgement, and the
 * next window always restarts at the block after the highest acknowledged one, so an ACK in
 * the middle of a window (the client saw a gap) resends from the gap.
 *
 * Sorcerer's Apprentice Syndrome (RFC 1123 §4.2.3.1): a duplicate ACK never triggers a
 * retransmission, with or without a window; only the timer does. A client that sees a gap in a
 * window ACKs the last block it got in order, which is progress (an advance) unless the very
 * first block of the window was lost; that one case waits for the timer. Honouring duplicates
 * even once per window would let a network that duplicates packets double the traffic.
 *
 * Retransmission: on each timeout the window (or the OACK) is resent and the timeout doubles,
 * up to `maxTimeoutMs`; after `retries` retransmissions in a row without progress, abort.
 */
import { TFTP_MAX_BLOCK_NUMBER } from '../../wire/tftp/tftp-packet.js';

export interface TransferPlan {
  /** Bytes to send. The last block is shorter than blockSize, possibly empty (RFC 1350 §6). */
  readonly size: number;
  readonly blockSize: number;
  readonly windowSize: number;
  /** True when options were negotiated: an OACK goes first and ACK 0 starts the data. */
  readonly optionAck: boolean;
  /** First retransmission timeout. */
  readonly timeoutMs: number;
  /** Retransmissions in a row without progress before giving up. */
  readonly retries: number;
  /** Cap of the exponential backoff; default 60 s. */
  readonly maxTimeoutMs?: number;
}

/** What the server must do next. Block numbers are absolute (1-based). */
export type TransferAction =
  | { readonly kind: 'send-oack' }
  | { readonly kind: 'send-data'; readonly first: number; readonly last: number; readonly retransmit: boolean }
  | { readonly kind: 'none' }
  | { readonly kind: 'done' }
  | { readonly kind: 'abort'; readonly reason: 'timeout' };

/** How an ACK was classified, for metrics and tests. */
export type AckVerdict = 'option-ack' | 'advance' | 'duplicate' | 'stale' | 'finished';

const DEFAULT_MAX_TIMEOUT_MS = 60_000;
const BLOCK_SPACE = TFTP_MAX_BLOCK_NUMBER + 1;

export class TftpTransfer {
  readonly plan: TransferPlan;
  /** Number of blocks in the transfer: always one more than full blocks (the short last one). */
  readonly totalBlocks: number;
  private oackPending: boolean;
  private acked = 0;
  private sentUpTo = 0;
  private retriesUsed = 0;
  private currentTimeoutMs: number;
  private state: 'new' | 'running' | 'done' | 'aborted' = 'new';
  /** Last ACK's classification (read by the server for metrics). */
  lastVerdict: AckVerdict | undefined;

  constructor(plan: TransferPlan) {
    this.plan = plan;
    this.totalBlocks = Math.floor(plan.size / plan.blockSize) + 1;
    this.oackPending = plan.optionAck;
    this.currentTimeoutMs = plan.timeoutMs;
  }

  /** The wire block number of absolute block `abs`. */
  static wireBlock(abs: number): number {
    return abs % BLOCK_SPACE;
  }

  /** Byte offset in the file of absolute block `abs`. */
  blockOffset(abs: number): number {
    return (abs - 1) * this.plan.blockSize;
  }

  /** Payload length of absolute block `abs`. */
  blockLength(abs: number): number {
    return Math.max(0, Math.min(this.plan.blockSize, this.plan.size - this.blockOffset(abs)));
  }

  /** Timeout to arm after carrying out the last action. */
  get timeoutMs(): number {
    return this.currentTimeoutMs;
  }

  /** Highest block acknowledged by the client. */
  get ackedBlocks(): number {
    return this.acked;
  }

  get finished(): boolean {
    return this.state === 'done' || this.state === 'aborted';
  }

  /** First action: the OACK, or the first window of DATA (RFC 2347: no options, no OACK). */
  start(): TransferAction {
    if (this.state !== 'new') return { kind: 'none' };
    this.state = 'running';
    if (this.oackPending) return { kind: 'send-oack' };
    return this.sendWindow(false);
  }

  /** An ACK arrived from the client's TID with wire block number `wireBlock`. */
  onAck(wireBlock: number): TransferAction {
    if (this.state !== 'running') {
      this.lastVerdict = 'finished';
      return { kind: 'none' };
    }
    if (this.oackPending) {
      if (wireBlock !== 0) {
        this.lastVerdict = 'stale';
        return { kind: 'none' };
      }
      this.lastVerdict = 'option-ack';
      this.oackPending = false;
      this.progress();
      return this.sendWindow(false);
    }
    const abs = this.acked + ((wireBlock - TftpTransfer.wireBlock(this.acked) + BLOCK_SPACE) % BLOCK_SPACE);
    if (abs > this.sentUpTo) {
      this.lastVerdict = 'stale';
      return { kind: 'none' };
    }
    if (abs === this.acked) {
      this.lastVerdict = 'duplicate';
      return { kind: 'none' };
    }
    this.lastVerdict = 'advance';
    this.acked = abs;
    this.progress();
    if (this.acked === this.totalBlocks) {
      this.state = 'done';
      return { kind: 'done' };
    }
    return this.sendWindow(false);
  }

  /** The retransmission timer fired with no progress since it was armed. */
  onTimeout(): TransferAction {
    if (this.state !== 'running') return { kind: 'none' };
    if (this.retriesUsed >= this.plan.retries) {
      this.state = 'aborted';
      return { kind: 'abort', reason: 'timeout' };
    }
    this.retriesUsed++;
    this.currentTimeoutMs = Math.min(this.currentTimeoutMs * 2, this.plan.maxTimeoutMs ?? DEFAULT_MAX_TIMEOUT_MS);
    if (this.oackPending) return { kind: 'send-oack' };
    return this.sendWindow(true);
  }

  /** The client sent an ERROR packet: the transfer ends, nothing is sent back (RFC 1350 §7). */
  onClientError(): TransferAction {
    if (this.state === 'running' || this.state === 'new') this.state = 'aborted';
    return { kind: 'none' };
  }

  private progress(): void {
    this.retriesUsed = 0;
    this.currentTimeoutMs = this.plan.timeoutMs;
  }

  private sendWindow(retransmit: boolean): TransferAction {
    const first = this.acked + 1;
    const last = Math.min(this.acked + this.plan.windowSize, this.totalBlocks);
    this.sentUpTo = Math.max(this.sentUpTo, last);
    return { kind: 'send-data', first, last, retransmit };
  }
}

/**
 * Dead-peer detection for one iSCSI connection: a target-initiated NOP-In (RFC 7143 §11.19)
 * after an idle interval, and the connection dropped when no byte comes back in time. Owned
 * by IscsiConnection, started once the session is established.
 */
import type { ConnectionContext } from './connection-context.js';

/** What the pinger needs from its connection (IscsiConnection). */
export interface PingedConnection {
  /** True once the socket is gone: the timer then does nothing. */
  isClosed(): boolean;
  /** Drops the connection, counting `reason`. */
  drop(reason: string): void;
  /** A fresh target transfer tag. */
  nextTtt(): number;
  /** Sends the NOP-In ping carrying `ttt`. */
  sendPing(ttt: number): void;
}

/** The NOP-In timer of one connection and what it has heard from the peer. */
export class NopPinger {
  private nopTimer: NodeJS.Timeout | undefined;
  private lastReceived = Date.now();
  /** The TTT and send time of the unanswered target ping, if any. */
  private ping: { ttt: number; sentAt: number } | null = null;

  /** `ctx.nopInIntervalMs` and `ctx.nopInTimeoutMs` are read when the pinger starts. */
  constructor(
    private readonly ctx: Pick<ConnectionContext, 'nopInIntervalMs' | 'nopInTimeoutMs'>,
    private readonly conn: PingedConnection,
  ) {}

  /** Called for every read from the socket: any byte from the peer proves it is alive. */
  received(): void {
    this.lastReceived = Date.now();
    this.ping = null;
  }

  /** Target-initiated NOP-In on an idle connection; no byte back within the timeout drops it (dead peer). Nothing when the interval is 0. */
  start(): void {
    const interval = this.ctx.nopInIntervalMs ?? 0;
    if (interval <= 0) return;
    const timeout = this.ctx.nopInTimeoutMs ?? interval;
    this.nopTimer = setInterval(() => {
      if (this.conn.isClosed()) return;
      const now = Date.now();
      if (this.ping) {
        if (now - this.ping.sentAt >= timeout) this.conn.drop('nop-timeout');
        return;
      }
      if (now - this.lastReceived < interval) return;
      const ttt = this.conn.nextTtt();
      this.ping = { ttt, sentAt: now };
      this.conn.sendPing(ttt);
    }, Math.max(10, Math.min(interval, timeout) / 2));
    this.nopTimer.unref();
  }

  /** Stops the timer (the connection closed). */
  stop(): void {
    clearInterval(this.nopTimer);
  }
}

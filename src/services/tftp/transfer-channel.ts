/**
 * The socket of one TFTP transfer as TftpServer sees it: our TID, connected to the client's
 * (RFC 1350 §4), so the kernel delivers only the client's datagrams and drops the others.
 *
 * Two implementations with one behaviour:
 * - `native` (src/net/udp-transfer-socket.ts, the C addon): an ACK reaches JS as its block
 *   number, a window leaves in one sendmmsg(2), and the next window can be staged so that the
 *   addon sends it as soon as the expected ACK arrives. Used when the addon is built.
 * - `dgram` (node:dgram): the fallback when it is not. Each datagram costs Node a 64 KiB
 *   receive buffer, an rinfo object and a send request; measurably slower at small windows
 *   (docs/tftp.md).
 */
import { createSocket, type Socket } from 'node:dgram';
import { nativeUdpTransferAvailable, openUdpTransferSocket } from '../../net/udp-transfer-socket.js';

/** Which socket implementation carries transfers. */
export type TransferTransport = 'native' | 'dgram';

/** Receivers of a channel. */
export interface TransferHandlers {
  /**
   * An ACK datagram (>= 4 bytes, opcode 4) arrived: its 16-bit block number, and how many
   * packets of the staged window it released (-1: none; always -1 on dgram).
   */
  ack(block: number, sent: number): void;
  /** Any other datagram from the client. */
  packet(datagram: Buffer): void;
  /** A socket error (ECONNREFUSED once the client's port is gone). */
  error(err: Error): void;
}

export interface TransferChannel {
  readonly transport: TransferTransport;
  /** Our port (the server's TID). */
  readonly localPort: number;
  /** Starts receiving; once. */
  start(handlers: TransferHandlers): void;
  /** Sends one datagram, best effort (a loss is the retransmission timer's business). */
  send(datagram: Buffer): void;
  /**
   * Sends packets[0..count-1] in order; returns how many were taken. When fewer than count,
   * the socket is full: call whenWritable and resume after them. Throws when the kernel
   * refuses (the peer is gone...).
   */
  sendBatch(packets: readonly Buffer[], count: number): number;
  /**
   * Native only (undefined on dgram): stages the window to send, without waiting for JS, when
   * the ACK with wire number `ackBlock` arrives (UdpTransferSocket.stage), busy-polling up to
   * `spinMicros` for it. -1 / 0 clears.
   */
  readonly stage: ((ackBlock: number, packets: readonly Buffer[], count: number, spinMicros: number) => void) | undefined;
  /** Busy-poll counters (native; zeros on dgram). */
  spinStatistics(): { readonly spinHits: number; readonly spinMisses: number };
  /** Calls `callback` once when sending can resume after a short sendBatch. */
  whenWritable(callback: () => void): void;
  /** Closes; with `last`, sends that datagram first (an ERROR). Safe to call twice. */
  close(last?: Buffer): void;
}

/** Sends queued in libuv (the socket buffer is full) before the dgram channel reports itself full. */
const DGRAM_SEND_QUEUE_LIMIT = 8;

/** 'native' when the addon is built, else 'dgram'. */
export function defaultTransport(): TransferTransport {
  return nativeUdpTransferAvailable() ? 'native' : 'dgram';
}

/**
 * Opens a channel bound to (bindAddress, any port), connected to (peerAddress, peerPort).
 * Rejects with the bind/connect error (native: NET_SEND_FAILED / NET_INVALID_OPTION).
 */
export async function openTransferChannel(transport: TransferTransport, bindAddress: string, peerAddress: string, peerPort: number, ipv6: boolean): Promise<TransferChannel> {
  if (transport === 'native') return nativeChannel(bindAddress, peerAddress, peerPort);
  const socket = createSocket({ type: ipv6 ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, bindAddress, () => {
      socket.connect(peerPort, peerAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  }).catch((err: unknown) => {
    socket.close();
    throw err;
  });
  return new DgramChannel(socket);
}

function nativeChannel(bindAddress: string, peerAddress: string, peerPort: number): TransferChannel {
  const socket = openUdpTransferSocket({ bindAddress, peerAddress, peerPort });
  let closed = false;
  return {
    transport: 'native',
    localPort: socket.localPort,
    start: (handlers) => socket.start(handlers),
    send: (datagram) => void socket.send(datagram),
    sendBatch: (packets, count) => socket.sendBatch(packets, count),
    stage: (ackBlock, packets, count, spinMicros) => socket.stage(ackBlock, packets, count, spinMicros),
    spinStatistics: () => socket.statistics(),
    whenWritable: (callback) => socket.whenWritable(callback),
    close(last) {
      if (closed) return;
      closed = true;
      if (last !== undefined) {
        try {
          socket.send(last);
        } catch {
          // the peer is gone: nothing to tell it
        }
      }
      socket.close();
    },
  };
}

class DgramChannel implements TransferChannel {
  readonly transport = 'dgram';
  readonly stage = undefined;
  spinStatistics(): { readonly spinHits: number; readonly spinMisses: number } {
    return { spinHits: 0, spinMisses: 0 };
  }
  readonly localPort: number;
  private writable: (() => void) | undefined;
  private closed = false;
  private readonly onSent = (): void => {
    const callback = this.writable;
    this.writable = undefined;
    if (!this.closed) callback?.();
  };

  constructor(private readonly socket: Socket) {
    this.localPort = socket.address().port;
  }

  start(handlers: TransferHandlers): void {
    this.socket.on('message', (msg: Buffer) => {
      if (msg.length >= 4 && msg[0] === 0 && msg[1] === 4) handlers.ack(msg.readUInt16BE(2), -1);
      else handlers.packet(msg);
    });
    this.socket.on('error', (err) => handlers.error(err));
  }

  send(datagram: Buffer): void {
    this.socket.send(datagram);
  }

  sendBatch(packets: readonly Buffer[], count: number): number {
    for (let i = 0; i < count; i++) {
      if (i > 0 && this.socket.getSendQueueCount() >= DGRAM_SEND_QUEUE_LIMIT) {
        // libuv is queueing: hand over this one and resume when it has left.
        this.socket.send(packets[i]!, this.onSent);
        return i + 1;
      }
      this.socket.send(packets[i]!);
    }
    return count;
  }

  whenWritable(callback: () => void): void {
    this.writable = callback;
  }

  close(last?: Buffer): void {
    if (this.closed) return;
    this.closed = true;
    const closeSocket = () => {
      try {
        this.socket.close();
      } catch {
        // already closed by an error
      }
    };
    if (last !== undefined) this.socket.send(last, closeSocket);
    else closeSocket();
  }
}

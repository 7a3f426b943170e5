/**
 * A connected UDP socket for one TFTP transfer, implemented by the native addon
 * (native/udp_transfer.c, built into native/build/Release/diskless_raw.node by `make native`).
 * TftpServer uses it instead of node:dgram when the addon is built: an ACK reaches JS as its
 * block number only (no 64 KiB receive buffer and no rinfo object per datagram), and a window
 * of DATA packets leaves with one sendmmsg(2). Unprivileged: any user may open one.
 */
import { isIP } from 'node:net';
import { DisklessError } from '../errors/index.js';
import { ADDON_PATH, loadNativeAddon } from './native-addon.js';

/** Where node-gyp leaves the addon, relative to the repository root (as in open-raw-socket.ts). */

/** Event kinds the addon reports through `onEvent` (udp_transfer.c UT_EVENT_*). */
const AddonEvent = { packet: 1, error: 2, writable: 3 } as const;

interface AddonUdpTransfer {
  readonly localPort: number;
  start(onAck: (block: number, sent: number) => void, onEvent: (kind: number, payload: unknown) => void): void;
  send(packet: Buffer): boolean;
  sendBatch(packets: readonly Buffer[], count: number): number;
  stage(ackBlock: number, packets: readonly Buffer[], count: number, spinMicros: number): void;
  statistics(): UdpTransferStatistics;
  waitWritable(): void;
  close(): void;
}

interface Addon {
  UdpTransfer?: new (bindAddress: string, peerAddress: string, peerPort: number) => AddonUdpTransfer;
}

/** Receivers of one transfer socket. */
export interface UdpTransferHandlers {
  /**
   * A datagram of >= 4 bytes with opcode 4 (ACK) arrived: its 16-bit block number, and how
   * many datagrams of the staged window it released (see `stage`), -1 when it released none.
   */
  ack(block: number, sent: number): void;
  /** Any other datagram (the callee may keep the Buffer). */
  packet(datagram: Buffer): void;
  /** A receive error: ECONNREFUSED once the peer's port is gone (ICMP), read and cleared. */
  error(err: DisklessError): void;
}

/** Counters of one transfer socket since open. */
export interface UdpTransferStatistics {
  /** Busy-polls (see `stage`) that saw the staged ACK arrive in time. */
  readonly spinHits: number;
  /** Busy-polls that gave up (each makes the socket skip the next 2, 4, ... 1024 chances). */
  readonly spinMisses: number;
}

/** What to open: our end binds to (bindAddress, any port) and connects to the peer. */
export interface UdpTransferOptions {
  /** Numeric address of our end (0.0.0.0 / :: for any); same family as peerAddress. */
  readonly bindAddress: string;
  readonly peerAddress: string;
  readonly peerPort: number;
}

/** An open transfer socket. Methods throw NET_SOCKET_CLOSED after close(). */
export interface UdpTransferSocket {
  /** Our ephemeral port (the server's TID). */
  readonly localPort: number;
  /** Starts receiving; call once. */
  start(handlers: UdpTransferHandlers): void;
  /** Sends one datagram; false when the send buffer is full (nothing sent). Throws NET_SEND_FAILED. */
  send(datagram: Buffer): boolean;
  /**
   * Sends datagrams packets[0..count-1] in order (sendmmsg, 64 per syscall) and returns how
   * many left; fewer than count when the send buffer filled up: call whenWritable and resume.
   * Throws NET_SEND_FAILED (ECONNREFUSED when the peer is gone, EMSGSIZE...).
   */
  sendBatch(packets: readonly Buffer[], count: number): number;
  /**
   * Stages packets[0..count-1]: the addon sends them (sendmmsg) the moment an ACK with wire
   * block number `ackBlock` arrives, before JS runs, and reports how many left as the `sent`
   * argument of that ACK. One-shot; replaced by the next call; ackBlock -1 or count 0 clears
   * it. The array and its Buffers must not change until the next call (the addon holds it).
   * `spinMicros` (0..1000, default 0): after handling a wake-up, busy-wait up to that long for
   * this ACK before yielding to the event loop (native/udp_transfer.c explains the bounds).
   */
  stage(ackBlock: number, packets: readonly Buffer[], count: number, spinMicros?: number): void;
  /** Counters since open (also after close). */
  statistics(): UdpTransferStatistics;
  /** Calls `callback` once, as soon as the send buffer has room again. */
  whenWritable(callback: () => void): void;
  /** Stops receiving and closes the descriptor; safe to call twice. */
  close(): void;
}

/** The addon's UdpTransfer class, or a NET_ADDON_MISSING error saying why there is none. */
function loadUdpTransfer(): NonNullable<Addon['UdpTransfer']> | DisklessError {
  let addon: Addon;
  try {
    addon = loadNativeAddon<Addon>();
  } catch (err) {
    return err as DisklessError;
  }
  if (typeof addon.UdpTransfer === 'function') return addon.UdpTransfer;
  return new DisklessError('NET_ADDON_MISSING', `cannot use the native addon ${ADDON_PATH}: it has no UdpTransfer (built before udp_transfer.c); run \`make build\``, { path: ADDON_PATH });
}

/** True when the addon is built with UdpTransfer (otherwise TftpServer falls back to node:dgram). */
export function nativeUdpTransferAvailable(): boolean {
  return !(loadUdpTransfer() instanceof DisklessError);
}

interface ErrnoError extends Error {
  code?: string;
  syscall?: string;
}

function wrap(err: unknown, peer: string, what: string): DisklessError {
  const e = err as ErrnoError;
  const code = e.code === 'ERR_INVALID_ARG_TYPE' ? 'NET_INVALID_OPTION' : 'NET_SEND_FAILED';
  return new DisklessError(code, `cannot ${what} for TFTP peer ${peer}: ${e.syscall ?? 'call'} failed with ${e.code ?? e.message}`, { peer, errno: e.code, syscall: e.syscall }, { cause: err });
}

/**
 * Opens a transfer socket bound to (bindAddress, 0) and connected to (peerAddress, peerPort):
 * the kernel delivers only the peer's datagrams. Throws NET_ADDON_MISSING (use
 * nativeUdpTransferAvailable first), NET_INVALID_OPTION (bad address or port, families
 * differ), NET_SEND_FAILED (socket, bind or connect failed; data.errno names the cause).
 */
export function openUdpTransferSocket(options: UdpTransferOptions): UdpTransferSocket {
  const { bindAddress, peerAddress, peerPort } = options;
  const peer = `${peerAddress}:${peerPort}`;
  for (const [field, value] of [['bindAddress', bindAddress], ['peerAddress', peerAddress]] as const) {
    if (typeof value !== 'string' || isIP(value) === 0) throw new DisklessError('NET_INVALID_OPTION', `cannot open TFTP transfer socket: ${field} is ${JSON.stringify(value)}, allowed a numeric IPv4 or IPv6 address`, { field, value, allowed: 'numeric IPv4 or IPv6 address' });
  }
  if (!Number.isInteger(peerPort) || peerPort < 1 || peerPort > 65535) {
    throw new DisklessError('NET_INVALID_OPTION', `cannot open TFTP transfer socket: peerPort is ${peerPort}, allowed 1..65535`, { field: 'peerPort', value: peerPort, allowed: '1..65535' });
  }
  if (isIP(bindAddress) !== isIP(peerAddress)) {
    throw new DisklessError('NET_INVALID_OPTION', `cannot open TFTP transfer socket: bindAddress ${bindAddress} and peerAddress ${peerAddress} are of different families`, { field: 'bindAddress', value: bindAddress, allowed: `an IPv${isIP(peerAddress)} address` });
  }
  const UdpTransfer = loadUdpTransfer();
  if (UdpTransfer instanceof DisklessError) throw UdpTransfer;
  let native: AddonUdpTransfer;
  try {
    native = new UdpTransfer(bindAddress, peerAddress, peerPort);
  } catch (err) {
    throw wrap(err, peer, 'open transfer socket');
  }
  return new NativeUdpTransferSocket(native, peer);
}

class NativeUdpTransferSocket implements UdpTransferSocket {
  readonly localPort: number;
  private closed = false;
  private started = false;
  private writable: (() => void) | undefined;

  constructor(
    private readonly native: AddonUdpTransfer,
    private readonly peer: string,
  ) {
    this.localPort = native.localPort;
  }

  start(handlers: UdpTransferHandlers): void {
    this.checkOpen('start receiving');
    if (this.started) throw new DisklessError('NET_INVALID_OPTION', `cannot start the TFTP transfer socket for ${this.peer} twice`, { field: 'start', value: 2, allowed: 1 });
    this.started = true;
    // The ACK handler goes to the addon as is: nothing between the datagram and the state machine.
    this.native.start(handlers.ack, (kind, payload) => {
      if (kind === AddonEvent.packet) handlers.packet(payload as Buffer);
      else if (kind === AddonEvent.error) handlers.error(wrap(payload, this.peer, 'receive'));
      else if (kind === AddonEvent.writable) {
        const callback = this.writable;
        this.writable = undefined;
        callback?.();
      }
    });
  }

  send(datagram: Buffer): boolean {
    this.checkOpen('send');
    try {
      return this.native.send(datagram);
    } catch (err) {
      throw wrap(err, this.peer, `send a ${datagram.length}-byte datagram`);
    }
  }

  sendBatch(packets: readonly Buffer[], count: number): number {
    this.checkOpen('send');
    try {
      return this.native.sendBatch(packets, count);
    } catch (err) {
      throw wrap(err, this.peer, `send ${count} datagrams`);
    }
  }

  stage(ackBlock: number, packets: readonly Buffer[], count: number, spinMicros = 0): void {
    this.checkOpen('stage a window');
    try {
      this.native.stage(ackBlock, packets, count, spinMicros);
    } catch (err) {
      throw wrap(err, this.peer, `stage ${count} datagrams`);
    }
  }

  statistics(): UdpTransferStatistics {
    return this.native.statistics();
  }

  whenWritable(callback: () => void): void {
    this.checkOpen('wait to send');
    this.writable = callback;
    this.native.waitWritable();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.writable = undefined;
    this.native.close();
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new DisklessError('NET_SOCKET_CLOSED', `cannot ${what}: the TFTP transfer socket for ${this.peer} is closed`, { peer: this.peer });
  }
}

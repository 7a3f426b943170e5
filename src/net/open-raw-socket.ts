/**
 * The one door to the native AF_PACKET addon (native/diskless_raw.c): loads it, validates
 * options, and turns its errno-named errors into DisklessErrors with stable codes. DHCP and
 * RA servers call `openRawSocket` once per configured interface at start; tests call it on
 * veth pairs. Needs root or CAP_NET_RAW.
 */
import { DisklessError, type ErrorCode } from '../errors/index.js';
import type { InterfaceInfo, RawSocket, RawSocketOptions, RawSocketStatistics } from './raw-socket.js';
import { loadNativeAddon } from './native-addon.js';

export { ADDON_PATH } from './native-addon.js';

/** Default SO_RCVBUF: enough for a burst of a few thousand DHCP-sized frames (STACK.md). */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/** ARPHRD_* link types whose frames start with an Ethernet header (linux/if_arp.h). */
export const EthernetLinkType = { ether: 1, loopback: 772 } as const;

/** Linux caps an interface name at IFNAMSIZ - 1 bytes. */
const MAX_IFNAME_BYTES = 15;
const MAX_BPF_INSTRUCTIONS = 4096;

interface AddonInterfaceInfo extends InterfaceInfo {
  readonly hardwareType: number;
}

interface AddonSocket {
  start(callback: (err: Error | null, frames: Buffer[]) => void): void;
  send(frame: Buffer): void;
  sendMany(frames: readonly Buffer[]): void;
  statistics(): { received: number; kernelDrops: number; truncated: number };
  close(): void;
}

interface Addon {
  interfaceInfo(ifname: string): AddonInterfaceInfo;
  RawSocket: new (ifname: string, ifindex: number, etherType: number, filter: ReadonlyArray<readonly number[]> | null, receiveBufferBytes: number, sendBufferBytes: number) => AddonSocket;
}

/** An errno-named Error as the addon throws it. */
interface ErrnoError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
}

/** Loads the addon (Node caches it after the first call). Throws NET_ADDON_MISSING. */
function loadAddon(): Addon {
  return loadNativeAddon<Addon>();
}

/** Maps an addon error to its catalogue code by errno name. */
function codeFor(err: ErrnoError, fallback: ErrorCode): ErrorCode {
  switch (err.code) {
    case 'ENODEV':
    case 'ENXIO':
      return 'NET_INTERFACE_NOT_FOUND';
    case 'EPERM':
    case 'EACCES':
      return 'NET_PERMISSION';
    case 'ERR_INVALID_ARG_TYPE':
      return 'NET_INVALID_OPTION';
    default:
      return fallback;
  }
}

function wrapError(err: unknown, ifname: string, fallback: ErrorCode, what: string, extra: Record<string, unknown> = {}): DisklessError {
  const e = err as ErrnoError;
  let code = codeFor(e, fallback);
  if (e.syscall === 'setsockopt(SO_ATTACH_FILTER)' && e.code === 'EINVAL') code = 'NET_INVALID_OPTION';
  if (fallback === 'NET_SEND_FAILED' && (e.code === 'ENOBUFS' || e.code === 'EAGAIN')) code = 'NET_SEND_BUSY';
  const reason = e.code === 'ENODEV' ? `no interface named "${ifname}"` : `${e.syscall ?? 'call'} failed with ${e.code ?? 'an error'}`;
  return new DisklessError(code, `cannot ${what} on interface ${ifname}: ${reason}`, { ifname, errno: e.code, syscall: e.syscall, ...extra }, { cause: err });
}

function checkIfname(ifname: string): void {
  if (typeof ifname !== 'string' || ifname.length === 0 || Buffer.byteLength(ifname) > MAX_IFNAME_BYTES || ifname.includes('/') || /\s/.test(ifname)) {
    throw new DisklessError('NET_INTERFACE_NOT_FOUND', `cannot look up interface ${JSON.stringify(ifname)}: a name is 1..15 bytes without "/" or spaces`, {
      field: 'ifname',
      value: ifname,
      allowed: '1..15 bytes, no "/" or whitespace',
    });
  }
}

function invalid(field: string, value: unknown, allowed: string): DisklessError {
  return new DisklessError('NET_INVALID_OPTION', `cannot open raw socket: ${field} is ${JSON.stringify(value)}, allowed ${allowed}`, { field, value, allowed });
}

function checkOptions(options: RawSocketOptions): void {
  const { etherType, filter, receiveBufferBytes, sendBufferBytes } = options;
  if (!Number.isInteger(etherType) || etherType < 0 || etherType > 0xffff) throw invalid('etherType', etherType, 'an integer 0..65535');
  if (receiveBufferBytes !== undefined && (!Number.isInteger(receiveBufferBytes) || receiveBufferBytes < 0 || receiveBufferBytes > 0x7fffffff)) {
    throw invalid('receiveBufferBytes', receiveBufferBytes, 'an integer 0..2147483647');
  }
  if (sendBufferBytes !== undefined && (!Number.isInteger(sendBufferBytes) || sendBufferBytes < 0 || sendBufferBytes > 0x7fffffff)) {
    throw invalid('sendBufferBytes', sendBufferBytes, 'an integer 0..2147483647');
  }
  if (filter === undefined) return;
  if (!Array.isArray(filter) || filter.length === 0 || filter.length > MAX_BPF_INSTRUCTIONS) throw invalid('filter', filter, `1..${MAX_BPF_INSTRUCTIONS} instructions`);
  const limits = [0xffff, 0xff, 0xff, 0xffffffff] as const;
  filter.forEach((ins, i) => {
    if (!Array.isArray(ins) || ins.length !== 4 || ins.some((v, j) => !Number.isInteger(v) || v < 0 || v > limits[j]!)) {
      throw invalid(`filter[${i}]`, ins, '[code u16, jt u8, jf u8, k u32]');
    }
  });
}

/**
 * The interface's index, MAC and MTU (SIOCGIFINDEX/SIOCGIFHWADDR/SIOCGIFMTU) in the current
 * network namespace. Throws NET_INTERFACE_NOT_FOUND, NET_ADDON_MISSING.
 */
export function interfaceInfo(ifname: string): InterfaceInfo {
  checkIfname(ifname);
  const addon = loadAddon();
  try {
    const { ifindex, mac, mtu } = addon.interfaceInfo(ifname);
    return { ifname, ifindex, mac, mtu };
  } catch (err) {
    throw wrapError(err, ifname, 'NET_RAW_SOCKET', 'read interface information');
  }
}

/**
 * Opens an AF_PACKET socket bound to `options.ifname` for `options.etherType`, with the
 * optional BPF filter attached before binding. Frames flow once `onFrame` is called (the
 * kernel queues them until then, up to the receive buffer). Frames this host sends on the
 * interface are never delivered. Throws NET_INTERFACE_NOT_FOUND, NET_PERMISSION,
 * NET_UNSUPPORTED_LINK, NET_INVALID_OPTION, NET_RAW_SOCKET, NET_ADDON_MISSING.
 */
export function openRawSocket(options: RawSocketOptions): RawSocket {
  checkIfname(options.ifname);
  checkOptions(options);
  const addon = loadAddon();
  const { ifname } = options;
  let info: AddonInterfaceInfo;
  try {
    info = addon.interfaceInfo(ifname);
  } catch (err) {
    throw wrapError(err, ifname, 'NET_RAW_SOCKET', 'open raw socket');
  }
  if (info.hardwareType !== EthernetLinkType.ether && info.hardwareType !== EthernetLinkType.loopback) {
    throw new DisklessError('NET_UNSUPPORTED_LINK', `cannot open raw socket on interface ${ifname}: link type ${info.hardwareType} does not carry Ethernet frames`, {
      ifname,
      value: info.hardwareType,
      allowed: 'Ethernet (1) or loopback (772)',
    });
  }
  let native: AddonSocket;
  try {
    native = new addon.RawSocket(ifname, info.ifindex, options.etherType, options.filter ?? null, options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES, options.sendBufferBytes ?? 0);
  } catch (err) {
    throw wrapError(err, ifname, 'NET_RAW_SOCKET', 'open raw socket');
  }
  return new AddonRawSocket(native, { ifname, ifindex: info.ifindex, mac: info.mac, mtu: info.mtu });
}

/** The RawSocket over one addon socket: dispatches batches frame by frame. */
class AddonRawSocket implements RawSocket {
  readonly ifname: string;
  readonly ifindex: number;
  readonly mac: Buffer;
  readonly mtu: number;
  private frameHandler: ((frame: Buffer) => void) | undefined;
  private errorHandler: ((err: Error) => void) | undefined;
  private started = false;
  private closed = false;
  private receiveErrors = 0;
  private lastStatistics: RawSocketStatistics | undefined;

  constructor(
    private readonly native: AddonSocket,
    info: InterfaceInfo,
  ) {
    this.ifname = info.ifname;
    this.ifindex = info.ifindex;
    this.mac = info.mac;
    this.mtu = info.mtu;
  }

  onFrame(handler: (frame: Buffer) => void): void {
    this.frameHandler = handler;
    if (this.started || this.closed) return;
    this.started = true;
    this.native.start((err, frames) => this.deliver(err, frames));
  }

  onError(handler: (err: Error) => void): void {
    this.errorHandler = handler;
  }

  send(frame: Buffer): void {
    if (this.closed) throw new DisklessError('NET_SOCKET_CLOSED', `cannot send on interface ${this.ifname}: the raw socket is closed`, { ifname: this.ifname });
    try {
      this.native.send(frame);
    } catch (err) {
      throw wrapError(err, this.ifname, 'NET_SEND_FAILED', `send a ${frame.length}-byte frame`);
    }
  }

  sendMany(frames: readonly Buffer[]): void {
    if (this.closed) throw new DisklessError('NET_SOCKET_CLOSED', `cannot send on interface ${this.ifname}: the raw socket is closed`, { ifname: this.ifname });
    try {
      this.native.sendMany(frames);
    } catch (err) {
      const sent = (err as { sent?: number }).sent ?? 0;
      throw wrapError(err, this.ifname, 'NET_SEND_FAILED', `send ${frames.length} frames (${sent} went out)`, { sent });
    }
  }

  statistics(): RawSocketStatistics {
    if (this.closed) return this.lastStatistics!;
    return { ...this.native.statistics(), receiveErrors: this.receiveErrors };
  }

  close(): void {
    if (this.closed) return;
    this.lastStatistics = this.statistics();
    this.closed = true;
    this.native.close();
  }

  /**
   * One batch from the addon. A throwing handler does not lose the rest of the batch: the
   * first exception is rethrown after it, and surfaces as 'uncaughtException'.
   */
  private deliver(err: Error | null, frames: Buffer[]): void {
    if (err) {
      this.receiveErrors++;
      this.errorHandler?.(wrapError(err, this.ifname, 'NET_RAW_SOCKET', 'receive'));
      return;
    }
    let thrown: { error: unknown } | undefined;
    for (const frame of frames) {
      if (this.closed) break;
      try {
        this.frameHandler?.(frame);
      } catch (error) {
        thrown ??= { error };
      }
    }
    if (thrown) throw thrown.error;
  }
}

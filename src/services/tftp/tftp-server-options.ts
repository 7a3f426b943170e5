import { DisklessError } from '../../errors/index.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import type { TransferTransport } from './transfer-channel.js';

/** Options of TftpServer; config keys `tftp.*` map one to one (root defaults to <dataDir>/tftp there). */
export interface TftpServerOptions {
  /** Directory served; nothing outside it is ever sent. */
  readonly root: string;
  /** Listen address; transfer sockets bind to it too. Default 0.0.0.0. */
  readonly address?: string;
  /** Listen port; 0 picks a free one (tests). Default 69. */
  readonly port?: number;
  /** Largest blksize granted, 512..65464; must fit the path MTU (1468 on Ethernet). Default 1468. */
  readonly maxBlockSize?: number;
  /** Largest windowsize granted, 1..65535. Default 64. */
  readonly maxWindowSize?: number;
  /** First retransmission timeout unless the client negotiates `timeout`; doubles per retry. Default 1000. */
  readonly timeoutMs?: number;
  /** Retransmissions in a row without progress before a transfer is aborted. Default 5. */
  readonly retries?: number;
  /**
   * Transfer sockets: 'native' (the addon's, needs `make native`), 'dgram' (node:dgram) or
   * 'auto' (native when the addon is built). Not a config key; tests pin it. Default 'auto'.
   */
  readonly transport?: TransferTransport | 'auto';
  /**
   * Native transport, while exactly one transfer runs: after each wake-up, busy-wait up to this
   * many microseconds for the client's next ACK instead of sleeping (a sleeping thread on a VM
   * takes tens of µs to wake, longer than a LAN round trip). A client slower than that makes
   * the socket back off (docs/tftp.md). 0 disables it. 0..1000, default 50. Not a config key.
   */
  readonly busyPollMicros?: number;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** Defaults of the optional TftpServerOptions (the same as config `tftp`). */
export const tftpServerDefaults = {
  address: '0.0.0.0',
  port: 69,
  maxBlockSize: 1468,
  maxWindowSize: 64,
  timeoutMs: 1000,
  retries: 5,
  transport: 'auto',
  busyPollMicros: 50,
} as const;

/** TftpServerOptions with every default applied (log and metrics aside). */
export type ResolvedTftpServerOptions = Required<Omit<TftpServerOptions, 'log' | 'metrics'>>;

function checkRange(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DisklessError('CONFIG_INVALID', `tftp.${field} is ${value}: allowed ${min}..${max}`, { field: `tftp.${field}`, value, allowed: `${min}..${max}` });
  }
}

/**
 * Applies the defaults and checks every range; throws CONFIG_INVALID naming the key, the
 * value and what is allowed. Called once by the TftpServer constructor.
 */
export function resolveTftpServerOptions(options: TftpServerOptions): ResolvedTftpServerOptions {
  const o = { ...tftpServerDefaults, ...stripUndefined(options) } as ResolvedTftpServerOptions;
  checkRange('port', o.port, 0, 65535);
  checkRange('maxBlockSize', o.maxBlockSize, 512, 65464);
  checkRange('maxWindowSize', o.maxWindowSize, 1, 65535);
  checkRange('timeoutMs', o.timeoutMs, 1, 255_000);
  checkRange('retries', o.retries, 0, 100);
  checkRange('busyPollMicros', o.busyPollMicros, 0, 1000);
  if (o.transport !== 'auto' && o.transport !== 'native' && o.transport !== 'dgram') {
    throw new DisklessError('CONFIG_INVALID', `tftp.transport is ${String(o.transport)}: allowed auto, native, dgram`, { field: 'tftp.transport', value: o.transport, allowed: ['auto', 'native', 'dgram'] });
  }
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

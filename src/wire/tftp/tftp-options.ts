/**
 * Reading the options of a TFTP request (RFC 2347) into typed values: blksize (RFC 2348),
 * tsize and timeout (RFC 2349), windowsize (RFC 7440). Pure. What the server grants from
 * these is decided in services/tftp/negotiate-options.ts.
 */
import { DisklessError } from '../../errors/index.js';
import type { TftpOption } from './tftp-packet.js';

/** Option names we understand, in their canonical lower-case spelling. */
export const TftpOptionName = {
  blockSize: 'blksize',
  transferSize: 'tsize',
  timeout: 'timeout',
  windowSize: 'windowsize',
} as const;
export type TftpOptionName = (typeof TftpOptionName)[keyof typeof TftpOptionName];

/** Value ranges the RFCs allow for each option. */
export const TftpOptionLimits = {
  /** RFC 2348: 8..65464 octets. */
  blksize: { min: 8, max: 65464 },
  /** RFC 2349: 1..255 seconds. */
  timeout: { min: 1, max: 255 },
  /** RFC 7440: 1..65535 blocks. */
  windowsize: { min: 1, max: 65535 },
  /** RFC 2349 sets no bound; we accept what a JS number holds exactly. */
  tsize: { min: 0, max: Number.MAX_SAFE_INTEGER },
} as const satisfies Record<TftpOptionName, { min: number; max: number }>;

/** The options a client asked for, as numbers; absent when not asked or ignored. */
export interface RequestedOptions {
  readonly blksize?: number;
  readonly tsize?: number;
  readonly timeout?: number;
  readonly windowsize?: number;
}

/** Why an option of a request was not taken into account. */
export type IgnoredReason = 'unknown' | 'malformed' | 'out_of_range';

export interface IgnoredOption extends TftpOption {
  readonly reason: IgnoredReason;
}

export interface OptionReading {
  readonly requested: RequestedOptions;
  /** Options dropped from negotiation: RFC 2347 says a server ignores what it does not support. */
  readonly ignored: readonly IgnoredOption[];
}

const KNOWN: ReadonlySet<string> = new Set(Object.values(TftpOptionName));

/**
 * Interprets a request's options. Names compare case-insensitively (RFC 2347 §Options).
 * Unknown options are ignored (RFC 2347). A value that is not a plain decimal number, or is
 * outside the RFC range, makes that one option ignored: the transfer falls back to the RFC
 * 1350 behaviour for it, which every client must accept. The same option named twice is
 * ambiguous and throws TFTP_DUPLICATE_OPTION; the server answers ERROR 8 (RFC 2347).
 */
export function readRequestOptions(options: readonly TftpOption[]): OptionReading {
  const requested: Record<string, number> = {};
  const ignored: IgnoredOption[] = [];
  const seen = new Set<string>();
  for (const option of options) {
    const name = option.name.toLowerCase();
    if (seen.has(name)) {
      throw new DisklessError('TFTP_DUPLICATE_OPTION', `cannot read TFTP request: option ${name} appears twice`, { field: 'option', value: name });
    }
    seen.add(name);
    if (!KNOWN.has(name)) {
      ignored.push({ ...option, reason: 'unknown' });
      continue;
    }
    const limits = TftpOptionLimits[name as TftpOptionName];
    // Decimal digits only: no sign, no spaces, no exponent, no hex (RFC 2347 values are ASCII numbers).
    if (!/^[0-9]{1,20}$/.test(option.value)) {
      ignored.push({ ...option, reason: 'malformed' });
      continue;
    }
    const value = Number(option.value);
    if (!Number.isSafeInteger(value) || value < limits.min || value > limits.max) {
      ignored.push({ ...option, reason: 'out_of_range' });
      continue;
    }
    requested[name] = value;
  }
  return { requested: requested as RequestedOptions, ignored };
}

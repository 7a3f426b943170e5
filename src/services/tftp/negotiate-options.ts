/**
 * What the server grants from the options a client asked for (RFC 2347 negotiation). Pure.
 * Called once per read request by TftpServer, after the file is open (tsize needs its size).
 */
import { TftpOptionName, type RequestedOptions } from '../../wire/tftp/tftp-options.js';
import { TFTP_DEFAULT_BLOCK_SIZE, type TftpOption } from '../../wire/tftp/tftp-packet.js';

export interface NegotiationLimits {
  /** Largest blksize granted: sized so a DATA packet fits the path MTU (1468 for Ethernet: 1500 − 20 IP − 8 UDP − 4 TFTP). */
  readonly maxBlockSize: number;
  /** Largest windowsize granted (RFC 7440). */
  readonly maxWindowSize: number;
}

export interface Negotiated {
  readonly blockSize: number;
  readonly windowSize: number;
  /** Retransmission timeout the client asked for (RFC 2349), seconds; absent when not negotiated. */
  readonly timeoutSeconds?: number;
  /** Options for the OACK; empty means "no OACK, answer with DATA 1" (RFC 2347). */
  readonly optionAck: readonly TftpOption[];
}

/**
 * Grants options within `limits`:
 * - blksize: the smaller of the client's value and maxBlockSize (RFC 2348 lets the server
 *   answer a smaller value; the client's offer is its maximum).
 * - windowsize: the smaller of the client's value and maxWindowSize (RFC 7440 §3).
 * - timeout: granted as asked, 1..255 s (RFC 2349: the server must not change it).
 * - tsize: answered with `size` when it is known (RFC 2349: a read request carries 0, the
 *   OACK carries the file size); left out when `size` is undefined.
 * OACK names are the canonical lower-case spellings; clients compare them case-insensitively.
 */
export function negotiateOptions(requested: RequestedOptions, limits: NegotiationLimits, size: number | undefined): Negotiated {
  const optionAck: TftpOption[] = [];
  let blockSize = TFTP_DEFAULT_BLOCK_SIZE;
  let windowSize = 1;
  let timeoutSeconds: number | undefined;
  if (requested.blksize !== undefined) {
    blockSize = Math.min(requested.blksize, limits.maxBlockSize);
    optionAck.push({ name: TftpOptionName.blockSize, value: String(blockSize) });
  }
  if (requested.tsize !== undefined && size !== undefined) {
    optionAck.push({ name: TftpOptionName.transferSize, value: String(size) });
  }
  if (requested.timeout !== undefined) {
    timeoutSeconds = requested.timeout;
    optionAck.push({ name: TftpOptionName.timeout, value: String(timeoutSeconds) });
  }
  if (requested.windowsize !== undefined) {
    windowSize = Math.min(requested.windowsize, limits.maxWindowSize);
    optionAck.push({ name: TftpOptionName.windowSize, value: String(windowSize) });
  }
  return timeoutSeconds === undefined ? { blockSize, windowSize, optionAck } : { blockSize, windowSize, timeoutSeconds, optionAck };
}

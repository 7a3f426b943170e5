import { DisklessError } from '../../errors/index.js';
import { checkField } from './aoe-header.js';
import { checkMac } from './mac-mask-list.js';

/**
 * The argument of Reserve/Release (AoE r11 §3.4), after the AoE header:
 *
 *   0 RCmd   1 NMacs   2... NMacs MAC addresses, 6 bytes each
 *
 * While the reserve list is not empty, only initiators on it may send ATA commands (others
 * get error 6) or set the list; "force set" works for anyone, and an empty list releases.
 * The response carries the list as it now is. Pure.
 */

export const RESERVE_HEADER_LENGTH = 2;
/** Most MACs one reserve list holds: NMacs is a byte. */
export const MAX_RESERVE_LIST = 255;

/** RCmd. */
export const ReserveCommand = { read: 0, set: 1, forceSet: 2 } as const;

export interface ReserveRelease {
  readonly command: number;
  /** 6 bytes each (views into the input when decoded). */
  readonly macs: readonly Buffer[];
}

/** Decodes a Reserve/Release argument; WIRE_TRUNCATED when fewer MACs are present than NMacs says. */
export function decodeReserveRelease(arg: Buffer): ReserveRelease {
  if (arg.length < RESERVE_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE Reserve/Release: ${arg.length} bytes, need ${RESERVE_HEADER_LENGTH}`, { layer: 'aoe', length: arg.length });
  }
  const n = arg[1]!;
  if (arg.length < RESERVE_HEADER_LENGTH + n * 6) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE Reserve/Release: NMacs ${n}, only ${Math.floor((arg.length - RESERVE_HEADER_LENGTH) / 6)} MACs present`, { layer: 'aoe', length: arg.length });
  }
  const macs: Buffer[] = [];
  for (let i = 0; i < n; i++) macs.push(arg.subarray(RESERVE_HEADER_LENGTH + i * 6, RESERVE_HEADER_LENGTH + i * 6 + 6));
  return { command: arg[0]!, macs };
}

export function encodeReserveRelease(rr: ReserveRelease): Buffer {
  checkField('RCmd', rr.command, 0xff);
  checkField('NMacs', rr.macs.length, MAX_RESERVE_LIST);
  const out = Buffer.alloc(RESERVE_HEADER_LENGTH + rr.macs.length * 6);
  out[0] = rr.command;
  out[1] = rr.macs.length;
  rr.macs.forEach((m, i) => {
    checkMac(m);
    m.copy(out, RESERVE_HEADER_LENGTH + i * 6, 0, 6);
  });
  return out;
}

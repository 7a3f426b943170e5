import { DisklessError } from '../../errors/index.js';
import { checkField } from './aoe-header.js';

/**
 * The argument of Mac Mask List (AoE r11 §3.3), after the AoE header:
 *
 *   0 reserved   1 MCmd   2 MError   3 Dir Count   4... directives, 8 bytes each:
 *   0 reserved   1 DCmd   2-7 MAC address
 *
 * A target with a non-empty mask list ignores every message whose source MAC is not on it.
 * A request edits the list with directives; the response lists the whole mask list (DCmd 0)
 * or, on an MError, the index of the failing directive in Dir Count. Pure.
 */

export const MAC_MASK_HEADER_LENGTH = 4;
export const MAC_MASK_DIRECTIVE_LENGTH = 8;
/**
 * Most MACs one target keeps: a response lists them all in one frame. 184 directives make a
 * 1500-byte frame counting the Ethernet header (14 + 10 + 4 + 184 × 8); the 1500-byte MTU
 * itself (Ethernet payload) would hold 185.
 */
export const MAX_MASK_LIST = 184;

/** MCmd. */
export const MaskCommand = { read: 0, edit: 1 } as const;
/** MError. */
export const MaskError = { none: 0, unspecified: 1, badDirective: 2, listFull: 3 } as const;
/** DCmd. */
export const MaskDirective = { none: 0, add: 1, delete: 2 } as const;

export interface MaskDirectiveEntry {
  readonly command: number;
  /** 6 bytes (a view into the input when decoded). */
  readonly mac: Buffer;
}

export interface MacMaskList {
  readonly command: number;
  readonly error: number;
  /** Dir Count as sent (in an error response: the failing directive's index). */
  readonly count: number;
  readonly directives: readonly MaskDirectiveEntry[];
}

/** Decodes a Mac Mask List argument; WIRE_TRUNCATED when fewer directives are present than Dir Count says (not for an error response, whose count is an index). */
export function decodeMacMaskList(arg: Buffer): MacMaskList {
  if (arg.length < MAC_MASK_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE Mac Mask List: ${arg.length} bytes, need ${MAC_MASK_HEADER_LENGTH}`, { layer: 'aoe', length: arg.length });
  }
  const error = arg[2]!;
  const count = arg[3]!;
  const present = Math.floor((arg.length - MAC_MASK_HEADER_LENGTH) / MAC_MASK_DIRECTIVE_LENGTH);
  if (error === MaskError.none && present < count) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE Mac Mask List: Dir Count ${count}, only ${present} directives present`, { layer: 'aoe', length: arg.length });
  }
  const directives: MaskDirectiveEntry[] = [];
  for (let i = 0; i < Math.min(count, present); i++) {
    const at = MAC_MASK_HEADER_LENGTH + i * MAC_MASK_DIRECTIVE_LENGTH;
    directives.push({ command: arg[at + 1]!, mac: arg.subarray(at + 2, at + 8) });
  }
  return { command: arg[1]!, error, count, directives };
}

/** Encodes a Mac Mask List argument. `count` defaults to the number of directives. */
export function encodeMacMaskList(list: Omit<MacMaskList, 'count'> & { count?: number }): Buffer {
  checkField('MCmd', list.command, 0xff);
  checkField('MError', list.error, 0xff);
  checkField('Dir Count', list.directives.length, 0xff);
  const count = list.count ?? list.directives.length;
  checkField('Dir Count', count, 0xff);
  const out = Buffer.alloc(MAC_MASK_HEADER_LENGTH + list.directives.length * MAC_MASK_DIRECTIVE_LENGTH);
  out[1] = list.command;
  out[2] = list.error;
  out[3] = count;
  list.directives.forEach((d, i) => {
    checkField('DCmd', d.command, 0xff);
    checkMac(d.mac);
    const at = MAC_MASK_HEADER_LENGTH + i * MAC_MASK_DIRECTIVE_LENGTH;
    out[at + 1] = d.command;
    d.mac.copy(out, at + 2, 0, 6);
  });
  return out;
}

/** Throws WIRE_BAD_FIELD unless `mac` is 6 bytes. */
export function checkMac(mac: Buffer): void {
  if (mac.length !== 6) throw new DisklessError('WIRE_BAD_FIELD', `cannot encode AoE MAC address of ${mac.length} bytes: need 6`, { layer: 'aoe', field: 'mac', value: mac.length, allowed: [6] });
}

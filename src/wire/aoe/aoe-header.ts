import { DisklessError } from '../../errors/index.js';

/**
 * The AoE header (AoE r11 §2): the 10 bytes after the Ethernet header of every AoE message,
 * EtherType 0x88A2. Multi-byte fields are big-endian. Pure.
 *
 *   0  Ver(4) Flags(4)   1  Error   2-3  Major (shelf)   4  Minor (slot)   5  Command   6-9  Tag
 */

/** The only protocol version (AoE r11 §2.2); a request with another gets error 5. */
export const AOE_VERSION = 1;
/** Bytes of the AoE header, after the 14-byte Ethernet header. */
export const AOE_HEADER_LENGTH = 10;
/** Shelf (major) address every target answers (AoE r11 §2.5). */
export const AOE_BROADCAST_SHELF = 0xffff;
/** Slot (minor) address every target answers (AoE r11 §2.5). */
export const AOE_BROADCAST_SLOT = 0xff;

/** Bits of the Flags nibble (AoE r11 §2.3). */
export const AoeFlag = {
  /** R: the message is a response. */
  response: 0x8,
  /** E: the response carries an error in the Error field. */
  error: 0x4,
} as const;

/** The Command field (AoE r11 §2.7); 0xf0-0xff are vendor-specific. */
export const AoeCommand = {
  ata: 0,
  queryConfig: 1,
  macMaskList: 2,
  reserveRelease: 3,
} as const;

/** The Error field of a response with the E flag (AoE r11 §2.4). */
export const AoeError = {
  /** The command code is not one the target knows. */
  unrecognizedCommand: 1,
  /** An argument is out of range or malformed. */
  badArgument: 2,
  /** The device cannot take commands now. */
  deviceUnavailable: 3,
  /** Query Config "set if empty" on a target whose config string is already set. */
  configStringPresent: 4,
  /** The Ver field is not 1. */
  unsupportedVersion: 5,
  /** The target is reserved to other initiators (Reserve/Release). */
  targetReserved: 6,
} as const;

export interface AoeHeader {
  /** Ver nibble (1 for every message this code sends). */
  readonly version: number;
  /** Flags nibble: AoeFlag bits and the two reserved ones. */
  readonly flags: number;
  readonly error: number;
  /** Major address: 0-0xfffe, 0xffff = every shelf. */
  readonly shelf: number;
  /** Minor address: 0-0xfe, 0xff = every slot. */
  readonly slot: number;
  readonly command: number;
  /** Chosen by the initiator, echoed in the response. */
  readonly tag: number;
}

/** Decodes the AoE header at the start of `payload` (the Ethernet payload). Checks length only: version and command are the server's to judge. */
export function decodeAoeHeader(payload: Buffer): AoeHeader {
  if (payload.length < AOE_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE header: ${payload.length} bytes after the Ethernet header, need ${AOE_HEADER_LENGTH}`, { layer: 'aoe', length: payload.length });
  }
  return {
    version: payload[0]! >> 4,
    flags: payload[0]! & 0x0f,
    error: payload[1]!,
    shelf: payload.readUInt16BE(2),
    slot: payload[4]!,
    command: payload[5]!,
    tag: payload.readUInt32BE(6),
  };
}

/** Writes `header` at `out[offset]` (10 bytes). Fields are range-checked: a wrong one is a programming error. */
export function writeAoeHeader(header: AoeHeader, out: Buffer, offset = 0): void {
  checkField('version', header.version, 0x0f);
  checkField('flags', header.flags, 0x0f);
  checkField('error', header.error, 0xff);
  checkField('shelf', header.shelf, 0xffff);
  checkField('slot', header.slot, 0xff);
  checkField('command', header.command, 0xff);
  checkField('tag', header.tag, 0xffffffff);
  out[offset] = (header.version << 4) | header.flags;
  out[offset + 1] = header.error;
  out.writeUInt16BE(header.shelf, offset + 2);
  out[offset + 4] = header.slot;
  out[offset + 5] = header.command;
  out.writeUInt32BE(header.tag, offset + 6);
}

/** Throws WIRE_BAD_FIELD unless `value` is an integer in [0, max]. Shared by the AoE encoders. */
export function checkField(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot encode AoE ${field} ${value}: allowed 0-${max}`, { layer: 'aoe', field, value, allowed: `0-${max}` });
  }
}

/** The response header to `request`: same version, addresses and tag, R set, E set when `error` is non-zero. */
export function responseHeader(request: AoeHeader, error = 0, address?: { shelf: number; slot: number }): AoeHeader {
  return {
    version: AOE_VERSION,
    flags: AoeFlag.response | (error !== 0 ? AoeFlag.error : 0),
    error,
    shelf: address?.shelf ?? request.shelf,
    slot: address?.slot ?? request.slot,
    command: request.command,
    tag: request.tag,
  };
}

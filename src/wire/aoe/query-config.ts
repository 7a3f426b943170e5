import { DisklessError } from '../../errors/index.js';
import { checkField } from './aoe-header.js';

/**
 * The argument of Query Config Information (AoE r11 §3.2), after the AoE header:
 *
 *   0-1 Buffer Count   2-3 Firmware Version   4 Sector Count   5 AoE Ver(4) CCmd(4)
 *   6-7 Config String Length   8... Config String (at most 1024 bytes)
 *
 * In a request only CCmd and the config string matter; a response fills in the rest. Pure.
 */

export const QUERY_CONFIG_LENGTH = 8;
/** Longest config string a target keeps (AoE r11 §3.2). */
export const MAX_CONFIG_STRING = 1024;

/** CCmd (AoE r11 §3.2). */
export const ConfigCommand = {
  /** Read the config string: every target answers. */
  read: 0,
  /** Answer only if the config string equals the request's exactly. */
  testExact: 1,
  /** Answer only if the request's string is a prefix of the config string. */
  testPrefix: 2,
  /** Set the config string if it is empty, else answer with error 4. */
  setIfEmpty: 3,
  /** Set the config string whatever it holds. */
  forceSet: 4,
} as const;

export interface QueryConfig {
  /** Messages the target can queue: an initiator keeps at most this many outstanding. */
  readonly bufferCount: number;
  readonly firmwareVersion: number;
  /** Most sectors one ATA command may carry (set from the interface MTU). */
  readonly sectorCount: number;
  /** The AoE version the target speaks (1). */
  readonly aoeVersion: number;
  readonly command: number;
  /** A view into the input (decode) or the bytes to send (encode). */
  readonly config: Buffer;
}

/** Decodes a Query Config argument; WIRE_BAD_FIELD when the string is over 1024 bytes, WIRE_TRUNCATED when the message is shorter than its length says. */
export function decodeQueryConfig(arg: Buffer): QueryConfig {
  if (arg.length < QUERY_CONFIG_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE Query Config: ${arg.length} bytes, need ${QUERY_CONFIG_LENGTH}`, { layer: 'aoe', length: arg.length });
  }
  const length = arg.readUInt16BE(6);
  if (length > MAX_CONFIG_STRING) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot decode AoE Query Config: config string length ${length}, allowed 0-${MAX_CONFIG_STRING}`, { layer: 'aoe', field: 'config string length', value: length, allowed: `0-${MAX_CONFIG_STRING}` });
  }
  if (arg.length < QUERY_CONFIG_LENGTH + length) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode AoE Query Config: config string of ${length} bytes, only ${arg.length - QUERY_CONFIG_LENGTH} present`, { layer: 'aoe', length: arg.length });
  }
  return {
    bufferCount: arg.readUInt16BE(0),
    firmwareVersion: arg.readUInt16BE(2),
    sectorCount: arg[4]!,
    aoeVersion: arg[5]! >> 4,
    command: arg[5]! & 0x0f,
    config: arg.subarray(QUERY_CONFIG_LENGTH, QUERY_CONFIG_LENGTH + length),
  };
}

/** Encodes a Query Config argument. */
export function encodeQueryConfig(qc: QueryConfig): Buffer {
  checkField('buffer count', qc.bufferCount, 0xffff);
  checkField('firmware version', qc.firmwareVersion, 0xffff);
  checkField('sector count', qc.sectorCount, 0xff);
  checkField('AoE version', qc.aoeVersion, 0x0f);
  checkField('CCmd', qc.command, 0x0f);
  checkField('config string length', qc.config.length, MAX_CONFIG_STRING);
  const out = Buffer.alloc(QUERY_CONFIG_LENGTH + qc.config.length);
  out.writeUInt16BE(qc.bufferCount, 0);
  out.writeUInt16BE(qc.firmwareVersion, 2);
  out[4] = qc.sectorCount;
  out[5] = (qc.aoeVersion << 4) | qc.command;
  out.writeUInt16BE(qc.config.length, 6);
  qc.config.copy(out, QUERY_CONFIG_LENGTH);
  return out;
}

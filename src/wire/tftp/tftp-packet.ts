/**
 * TFTP packet codec: RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR), RFC 2347 (options in requests,
 * OACK). Pure: bytes in, objects out, no sockets or clocks.
 *
 * Strings (file name, mode, option names and values, error messages) are decoded as latin1,
 * one character per byte, so a decode → encode round trip is byte-exact whatever the client
 * sent; the server decides what bytes it accepts in a name (see services/tftp/resolve-path.ts).
 */
import { DisklessError } from '../../errors/index.js';

/** Opcodes, RFC 1350 §5 and RFC 2347 (OACK). */
export const TftpOpcode = {
  readRequest: 1,
  writeRequest: 2,
  data: 3,
  ack: 4,
  error: 5,
  optionAck: 6,
} as const;
export type TftpOpcode = (typeof TftpOpcode)[keyof typeof TftpOpcode];

/** Error codes of the ERROR packet, RFC 1350 appendix and RFC 2347 (8). */
export const TftpErrorCode = {
  notDefined: 0,
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTransferId: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionNegotiationFailed: 8,
} as const;
export type TftpErrorCode = (typeof TftpErrorCode)[keyof typeof TftpErrorCode];

/** Transfer modes, RFC 1350 §5 (compared case-insensitively). */
export const TftpMode = { netascii: 'netascii', octet: 'octet', mail: 'mail' } as const;
export type TftpMode = (typeof TftpMode)[keyof typeof TftpMode];

/** Largest block number before rollover. */
export const TFTP_MAX_BLOCK_NUMBER = 0xffff;
/** Bytes of opcode + block number in front of DATA payload (RFC 1350 §5). */
export const TFTP_DATA_HEADER_LENGTH = 4;
/** Block size when no blksize option is negotiated (RFC 1350). */
export const TFTP_DEFAULT_BLOCK_SIZE = 512;

/** One option as it appears on the wire (RFC 2347): name and value, both NUL-terminated. */
export interface TftpOption {
  readonly name: string;
  readonly value: string;
}

export interface TftpRequestPacket {
  readonly opcode: typeof TftpOpcode.readRequest | typeof TftpOpcode.writeRequest;
  readonly filename: string;
  /** As sent; compare with `TftpMode` after lower-casing. */
  readonly mode: string;
  /** In the order sent, names as spelled by the client. */
  readonly options: readonly TftpOption[];
}
export interface TftpDataPacket {
  readonly opcode: typeof TftpOpcode.data;
  readonly block: number;
  /** A view into the decoded buffer (not a copy). */
  readonly data: Buffer;
}
export interface TftpAckPacket {
  readonly opcode: typeof TftpOpcode.ack;
  readonly block: number;
}
export interface TftpErrorPacket {
  readonly opcode: typeof TftpOpcode.error;
  readonly errorCode: number;
  readonly message: string;
}
export interface TftpOptionAckPacket {
  readonly opcode: typeof TftpOpcode.optionAck;
  readonly options: readonly TftpOption[];
}
export type TftpPacket = TftpRequestPacket | TftpDataPacket | TftpAckPacket | TftpErrorPacket | TftpOptionAckPacket;

const MODES: readonly string[] = Object.values(TftpMode);

/** Reads a NUL-terminated latin1 string at `off`; returns it and the offset after the NUL. */
function readString(buf: Buffer, off: number, field: string): [string, number] {
  const end = buf.indexOf(0, off);
  if (end < 0) throw new DisklessError('TFTP_TRUNCATED', `cannot decode TFTP ${field}: no NUL terminator in ${buf.length - off} bytes`, { field, length: buf.length - off });
  return [buf.toString('latin1', off, end), end + 1];
}

/**
 * Reads RFC 2347 option pairs from `off` to the end. Trailing bytes that are all NUL are
 * tolerated (some PXE ROMs pad requests); any other leftover is an option without a value.
 */
function readOptions(buf: Buffer, off: number): TftpOption[] {
  const options: TftpOption[] = [];
  while (off < buf.length) {
    if (isAllZero(buf, off)) break;
    let name: string;
    let value: string;
    [name, off] = readString(buf, off, 'option name');
    if (name.length === 0) throw new DisklessError('TFTP_BAD_FIELD', `cannot decode TFTP option at offset ${off - 1}: empty name`, { field: 'option name', value: '' });
    if (off >= buf.length) throw new DisklessError('TFTP_BAD_FIELD', `cannot decode TFTP option ${name}: no value`, { field: 'option value', option: name });
    [value, off] = readString(buf, off, `option ${name} value`);
    options.push({ name, value });
  }
  return options;
}

function isAllZero(buf: Buffer, off: number): boolean {
  for (let i = off; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function need(buf: Buffer, length: number, what: string): void {
  if (buf.length < length) throw new DisklessError('TFTP_TRUNCATED', `cannot decode TFTP ${what}: length is ${buf.length}, at least ${length} needed`, { field: what, length: buf.length, minimum: length });
}

/**
 * Decodes one TFTP datagram (the UDP payload). Throws DisklessError TFTP_TRUNCATED,
 * TFTP_BAD_OPCODE or TFTP_BAD_FIELD; never anything else. Lenient where real clients are
 * sloppy: extra bytes after an ACK's block number are ignored, an ERROR message without its
 * NUL runs to the end of the packet, trailing NUL padding after request options is ignored.
 */
export function decodeTftpPacket(buf: Buffer): TftpPacket {
  need(buf, 2, 'opcode');
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case TftpOpcode.readRequest:
    case TftpOpcode.writeRequest: {
      let [filename, off] = readString(buf, 2, 'filename');
      let mode: string;
      [mode, off] = readString(buf, off, 'mode');
      if (!MODES.includes(mode.toLowerCase())) throw new DisklessError('TFTP_BAD_FIELD', `cannot decode TFTP request: mode is ${JSON.stringify(mode)}`, { field: 'mode', value: mode, allowed: MODES });
      return { opcode, filename, mode, options: readOptions(buf, off) };
    }
    case TftpOpcode.data:
      need(buf, TFTP_DATA_HEADER_LENGTH, 'DATA');
      return { opcode, block: buf.readUInt16BE(2), data: buf.subarray(TFTP_DATA_HEADER_LENGTH) };
    case TftpOpcode.ack:
      need(buf, 4, 'ACK');
      return { opcode, block: buf.readUInt16BE(2) };
    case TftpOpcode.error: {
      need(buf, 4, 'ERROR');
      const end = buf.indexOf(0, 4);
      return { opcode, errorCode: buf.readUInt16BE(2), message: buf.toString('latin1', 4, end < 0 ? buf.length : end) };
    }
    case TftpOpcode.optionAck:
      return { opcode, options: readOptions(buf, 2) };
    default:
      throw new DisklessError('TFTP_BAD_OPCODE', `cannot decode TFTP packet: opcode is ${opcode}`, { field: 'opcode', value: opcode, allowed: Object.values(TftpOpcode) });
  }
}

function checkString(s: string, field: string): void {
  if (s.includes('\0')) throw new DisklessError('TFTP_BAD_FIELD', `cannot encode TFTP ${field}: it contains a NUL byte`, { field, value: s });
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) throw new DisklessError('TFTP_BAD_FIELD', `cannot encode TFTP ${field}: character ${i} is not latin1`, { field, value: s });
  }
}

function checkBlock(block: number): void {
  if (!Number.isInteger(block) || block < 0 || block > TFTP_MAX_BLOCK_NUMBER) {
    throw new DisklessError('TFTP_BAD_FIELD', `cannot encode TFTP block number ${block}`, { field: 'block', value: block, allowed: `0..${TFTP_MAX_BLOCK_NUMBER}` });
  }
}

function encodeStrings(opcode: number, strings: readonly string[]): Buffer {
  let length = 2;
  for (const s of strings) length += s.length + 1;
  const out = Buffer.alloc(length);
  out.writeUInt16BE(opcode, 0);
  let off = 2;
  for (const s of strings) {
    off += out.write(s, off, 'latin1');
    out[off++] = 0;
  }
  return out;
}

function optionStrings(options: readonly TftpOption[]): string[] {
  const out: string[] = [];
  for (const o of options) {
    if (o.name.length === 0) throw new DisklessError('TFTP_BAD_FIELD', 'cannot encode TFTP option: empty name', { field: 'option name', value: '' });
    checkString(o.name, 'option name');
    checkString(o.value, `option ${o.name} value`);
    out.push(o.name, o.value);
  }
  return out;
}

/** Encodes any TFTP packet. Throws TFTP_BAD_FIELD for NULs in strings or a block out of 0..65535. */
export function encodeTftpPacket(p: TftpPacket): Buffer {
  switch (p.opcode) {
    case TftpOpcode.readRequest:
    case TftpOpcode.writeRequest:
      checkString(p.filename, 'filename');
      checkString(p.mode, 'mode');
      return encodeStrings(p.opcode, [p.filename, p.mode, ...optionStrings(p.options)]);
    case TftpOpcode.data: {
      checkBlock(p.block);
      const out = Buffer.allocUnsafe(TFTP_DATA_HEADER_LENGTH + p.data.length);
      writeDataHeader(out, 0, p.block);
      p.data.copy(out, TFTP_DATA_HEADER_LENGTH);
      return out;
    }
    case TftpOpcode.ack:
      return encodeAck(p.block);
    case TftpOpcode.error:
      return encodeError(p.errorCode, p.message);
    case TftpOpcode.optionAck:
      return encodeStrings(TftpOpcode.optionAck, optionStrings(p.options));
  }
}

/**
 * Writes the 4-byte DATA header (opcode 3, `block`) at `offset` of a buffer the caller owns:
 * the server's send path lays packets out in place and calls this once per block.
 * `block` must already be wrapped to 0..65535.
 */
export function writeDataHeader(buf: Buffer, offset: number, block: number): void {
  buf.writeUInt16BE(TftpOpcode.data, offset);
  buf.writeUInt16BE(block, offset + 2);
}

/** An ACK for `block` (0..65535). */
export function encodeAck(block: number): Buffer {
  checkBlock(block);
  const out = Buffer.allocUnsafe(4);
  out.writeUInt16BE(TftpOpcode.ack, 0);
  out.writeUInt16BE(block, 2);
  return out;
}

/** An ERROR packet. `errorCode` 0..65535; `message` latin1 without NUL. */
export function encodeError(errorCode: number, message: string): Buffer {
  if (!Number.isInteger(errorCode) || errorCode < 0 || errorCode > 0xffff) {
    throw new DisklessError('TFTP_BAD_FIELD', `cannot encode TFTP error code ${errorCode}`, { field: 'errorCode', value: errorCode, allowed: '0..65535' });
  }
  checkString(message, 'error message');
  const out = Buffer.alloc(4 + message.length + 1);
  out.writeUInt16BE(TftpOpcode.error, 0);
  out.writeUInt16BE(errorCode, 2);
  out.write(message, 4, 'latin1');
  return out;
}

const OPCODE_NAMES: Readonly<Record<number, string>> = { 1: 'RRQ', 2: 'WRQ', 3: 'DATA', 4: 'ACK', 5: 'ERROR', 6: 'OACK' };

/**
 * One-line readable form of a packet, for golden dumps and debug logs:
 * `RRQ "boot.ipxe" octet blksize=1432 tsize=0`, `DATA block=1 length=512`, `ACK block=0`,
 * `ERROR code=1 "file not found"`, `OACK blksize=1432 tsize=35`.
 */
export function formatTftpPacket(p: TftpPacket): string {
  const name = OPCODE_NAMES[p.opcode]!;
  const options = (list: readonly TftpOption[]) => list.map((o) => ` ${o.name}=${o.value}`).join('');
  switch (p.opcode) {
    case TftpOpcode.readRequest:
    case TftpOpcode.writeRequest:
      return `${name} ${JSON.stringify(p.filename)} ${p.mode}${options(p.options)}`;
    case TftpOpcode.data:
      return `${name} block=${p.block} length=${p.data.length}`;
    case TftpOpcode.ack:
      return `${name} block=${p.block}`;
    case TftpOpcode.error:
      return `${name} code=${p.errorCode} ${JSON.stringify(p.message)}`;
    case TftpOpcode.optionAck:
      return `${name}${options(p.options)}`;
  }
}

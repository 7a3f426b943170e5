import { DisklessError } from '../../errors/index.js';
import { readIpv4Address, writeIpv4Address } from '../ipv4-udp/ipv4-udp.js';
import {
  BootpField,
  BootpOp,
  BOOTP_FIXED_LENGTH,
  BOOTP_MIN_LENGTH,
  DHCP_MAGIC_COOKIE,
  DHCP_MIN_LENGTH,
  DhcpOption,
  OptionOverload,
} from './dhcp-constants.js';
import { checkOptionLengths, concatenateInstances, layoutOptions, readOptionInstances, type DhcpOptions } from './dhcp-options.js';

/**
 * A BOOTP/DHCP message (RFC 2131 §2, figure 1). Decoded by `decodeDhcpMessage`, built by the
 * server and encoded by `encodeDhcpMessage`. Pure data; addresses are dotted quads.
 */
export interface DhcpMessage {
  /** BootpOp: 1 request, 2 reply. */
  readonly op: number;
  /** HardwareType (1 Ethernet). */
  readonly htype: number;
  readonly hops: number;
  /** Transaction id chosen by the client. */
  readonly xid: number;
  readonly secs: number;
  /** BOOTP_BROADCAST_FLAG and reserved bits. */
  readonly flags: number;
  readonly ciaddr: string;
  readonly yiaddr: string;
  readonly siaddr: string;
  readonly giaddr: string;
  /** Client hardware address: the first `hlen` bytes of the 16-byte field (hlen = chaddr.length). */
  readonly chaddr: Buffer;
  /** Server host name, up to its first NUL; empty when the field is unused or overloaded. */
  readonly sname: string;
  /** Boot file name, up to its first NUL; empty when the field is unused or overloaded. */
  readonly file: string;
  /**
   * Options in order of first appearance, long options concatenated (RFC 3396). Pad, End and
   * Overload (52) are structure, not content: the encoder decides overload by itself.
   */
  readonly options: DhcpOptions;
  /** Decoded only: option 52 of the received message, when present. */
  readonly overload?: number;
}

/** Encoder options. */
export interface EncodeDhcpOptions {
  /**
   * The largest DHCP message (UDP payload) the receiver accepts: option 57 minus 28, or
   * DHCP_DEFAULT_MAX_MESSAGE. Options that do not fit the options field overflow into unused
   * file and sname fields (RFC 2132 §9.3). Default: no limit.
   */
  readonly maxLength?: number;
}

const ZERO_ADDRESS = '0.0.0.0';

function fixedString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('utf8');
}

/**
 * Decodes a BOOTP/DHCP message (the UDP payload). Throws DisklessError: DHCP_TRUNCATED
 * (< 240 bytes), DHCP_BAD_COOKIE, DHCP_BAD_FIELD (op, hlen > 16, overload value),
 * DHCP_OPTION_OVERRUN, DHCP_MISSING_END, DHCP_BAD_OPTION_LENGTH, DHCP_BAD_OPTION_VALUE.
 */
export function decodeDhcpMessage(buf: Buffer): DhcpMessage {
  if (buf.length < DHCP_MIN_LENGTH) {
    throw new DisklessError('DHCP_TRUNCATED', `cannot decode DHCP message: ${buf.length} bytes, need at least ${DHCP_MIN_LENGTH}`, { length: buf.length, allowed: `>= ${DHCP_MIN_LENGTH}` });
  }
  const op = buf[0]!;
  if (op !== BootpOp.request && op !== BootpOp.reply) {
    throw new DisklessError('DHCP_BAD_FIELD', `cannot decode DHCP op: ${op} is neither 1 (BOOTREQUEST) nor 2 (BOOTREPLY)`, { field: 'op', value: op, allowed: '1, 2' });
  }
  const hlen = buf[2]!;
  if (hlen > BootpField.chaddrLength) {
    throw new DisklessError('DHCP_BAD_FIELD', `cannot decode DHCP hlen: ${hlen} is longer than the 16-byte chaddr field`, { field: 'hlen', value: hlen, allowed: '0-16' });
  }
  const cookie = buf.readUInt32BE(BOOTP_FIXED_LENGTH);
  if (cookie !== DHCP_MAGIC_COOKIE) {
    throw new DisklessError('DHCP_BAD_COOKIE', `cannot decode DHCP options: magic cookie is 0x${cookie.toString(16).padStart(8, '0')}, not 0x63825363`, {
      field: 'cookie',
      value: cookie,
      allowed: DHCP_MAGIC_COOKIE,
    });
  }
  const snameField = buf.subarray(BootpField.snameOffset, BootpField.snameOffset + BootpField.snameLength);
  const fileField = buf.subarray(BootpField.fileOffset, BootpField.fileOffset + BootpField.fileLength);
  const instances = readOptionInstances(buf.subarray(DHCP_MIN_LENGTH), 'options', true);

  const overloadInstances = instances.filter(([code]) => code === DhcpOption.overload);
  let overload: number | undefined;
  if (overloadInstances.length > 0) {
    const data = overloadInstances[0]![1];
    if (overloadInstances.length > 1 || data.length !== 1) {
      throw new DisklessError('DHCP_BAD_OPTION_LENGTH', `cannot decode option 52: it must appear once with length 1`, { option: DhcpOption.overload, length: data.length, allowed: 1 });
    }
    overload = data[0]!;
    if (overload < OptionOverload.file || overload > OptionOverload.both) {
      throw new DisklessError('DHCP_BAD_OPTION_VALUE', `cannot decode option 52: value is ${overload}, allowed 1 (file), 2 (sname), 3 (both)`, {
        option: DhcpOption.overload,
        value: overload,
        allowed: '1, 2, 3',
      });
    }
  }
  const fileOverloaded = overload === OptionOverload.file || overload === OptionOverload.both;
  const snameOverloaded = overload === OptionOverload.sname || overload === OptionOverload.both;
  // RFC 3396 §7: options field first, then file, then sname.
  const all = instances.filter(([code]) => code !== DhcpOption.overload);
  for (const [field, data, where] of [
    [fileOverloaded, fileField, 'file'],
    [snameOverloaded, snameField, 'sname'],
  ] as const) {
    if (!field) continue;
    for (const inst of readOptionInstances(data, where, true)) {
      if (inst[0] === DhcpOption.overload) {
        throw new DisklessError('DHCP_BAD_FIELD', `cannot decode ${where}: option 52 may only appear in the options field`, { field: where, option: DhcpOption.overload });
      }
      all.push(inst);
    }
  }
  const options = concatenateInstances(all);
  checkOptionLengths(options);
  return {
    op,
    htype: buf[1]!,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: readIpv4Address(buf, 12),
    yiaddr: readIpv4Address(buf, 16),
    siaddr: readIpv4Address(buf, 20),
    giaddr: readIpv4Address(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 28 + hlen)),
    sname: snameOverloaded ? '' : fixedString(snameField),
    file: fileOverloaded ? '' : fixedString(fileField),
    options,
    ...(overload === undefined ? {} : { overload }),
  };
}

function writeFixedString(out: Buffer, offset: number, length: number, value: string, field: 'sname' | 'file'): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length || bytes.includes(0)) {
    throw new DisklessError('DHCP_BAD_FIELD', `cannot encode ${field}: "${value.slice(0, 40)}" is ${bytes.length} bytes, the field holds ${length} without NUL bytes`, {
      field,
      value,
      allowed: `<= ${length} bytes`,
    });
  }
  bytes.copy(out, offset);
}

/**
 * Encodes `message` (RFC 2131 §2), options in map order, each closed list ended by End, the
 * whole padded to 300 bytes (RFC 1542). Long options are split (RFC 3396); with `maxLength`,
 * what does not fit overflows into an empty file and/or sname field with option 52 (RFC 2132
 * §9.3). Throws DHCP_BAD_FIELD (chaddr > 16 bytes, an address or string that does not fit),
 * DHCP_BAD_OPTION_VALUE (option code 0, 52 or 255 in `options`) or DHCP_MESSAGE_TOO_LONG.
 */
export function encodeDhcpMessage(message: DhcpMessage, encodeOptions: EncodeDhcpOptions = {}): Buffer {
  if (message.chaddr.length > BootpField.chaddrLength) {
    throw new DisklessError('DHCP_BAD_FIELD', `cannot encode chaddr: ${message.chaddr.length} bytes, the field holds 16`, { field: 'chaddr', value: message.chaddr.length, allowed: '<= 16' });
  }
  const options = [...message.options].filter(([code]) => {
    if (code === DhcpOption.overload) {
      throw new DisklessError('DHCP_BAD_OPTION_VALUE', 'cannot encode option 52: the encoder decides overload itself', { option: code });
    }
    return true;
  });
  const maxLength = encodeOptions.maxLength ?? Infinity;
  const optionsCapacity = maxLength - DHCP_MIN_LENGTH - 1; // End
  let areas = layoutOptions(options, [optionsCapacity]);
  let overload: number | undefined;
  if (!areas) {
    // Prefer the fewest overloaded fields: file alone, sname alone, then both.
    const candidates: Array<[number, number[]]> = [];
    if (message.file === '') candidates.push([OptionOverload.file, [BootpField.fileLength - 1]]);
    if (message.sname === '') candidates.push([OptionOverload.sname, [BootpField.snameLength - 1]]);
    if (candidates.length === 2) candidates.push([OptionOverload.both, [BootpField.fileLength - 1, BootpField.snameLength - 1]]);
    for (const [value, extra] of candidates) {
      areas = layoutOptions(options, [optionsCapacity - 3, ...extra]); // 3: option 52 itself
      if (areas) {
        overload = value;
        break;
      }
    }
    if (!areas) {
      throw new DisklessError('DHCP_MESSAGE_TOO_LONG', `cannot encode DHCP message: options do not fit ${maxLength} bytes even with option overload`, { maxLength });
    }
  }
  const optionBytes = overload === undefined ? areas[0]! : Buffer.concat([Buffer.from([DhcpOption.overload, 1, overload]), areas[0]!]);
  const length = Math.max(BOOTP_MIN_LENGTH, DHCP_MIN_LENGTH + optionBytes.length + 1);
  const out = Buffer.alloc(length);
  out[0] = message.op;
  out[1] = message.htype;
  out[2] = message.chaddr.length;
  out[3] = message.hops;
  out.writeUInt32BE(message.xid >>> 0, 4);
  out.writeUInt16BE(message.secs, 8);
  out.writeUInt16BE(message.flags, 10);
  writeIpv4Address(message.ciaddr || ZERO_ADDRESS, out, 12, 'ciaddr');
  writeIpv4Address(message.yiaddr || ZERO_ADDRESS, out, 16, 'yiaddr');
  writeIpv4Address(message.siaddr || ZERO_ADDRESS, out, 20, 'siaddr');
  writeIpv4Address(message.giaddr || ZERO_ADDRESS, out, 24, 'giaddr');
  message.chaddr.copy(out, 28);
  let next = 1;
  const overflow = (field: 'file' | 'sname', offset: number, fieldLength: number, used: boolean) => {
    if (used) {
      const data = areas![next++]!;
      data.copy(out, offset);
      out[offset + data.length] = DhcpOption.end;
      out.fill(DhcpOption.pad, offset + data.length + 1, offset + fieldLength);
    } else writeFixedString(out, offset, fieldLength, field === 'file' ? message.file : message.sname, field);
  };
  overflow('file', BootpField.fileOffset, BootpField.fileLength, overload === OptionOverload.file || overload === OptionOverload.both);
  overflow('sname', BootpField.snameOffset, BootpField.snameLength, overload === OptionOverload.sname || overload === OptionOverload.both);
  out.writeUInt32BE(DHCP_MAGIC_COOKIE, BOOTP_FIXED_LENGTH);
  optionBytes.copy(out, DHCP_MIN_LENGTH);
  out[DHCP_MIN_LENGTH + optionBytes.length] = DhcpOption.end;
  return out;
}

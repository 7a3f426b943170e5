import { DisklessError } from '../../errors/index.js';
import { readIpv4Address, writeIpv4Address } from '../ipv4-udp/ipv4-udp.js';

/**
 * Typed option values (RFC 2132 §2 data types): build the Buffer a DhcpOptions map holds and
 * read one back. Readers expect lengths already checked by `checkOptionLengths`; they still
 * throw DHCP_BAD_OPTION_LENGTH rather than read past the data.
 */

function need(data: Buffer, length: number, option: number): void {
  if (data.length < length) {
    throw new DisklessError('DHCP_BAD_OPTION_LENGTH', `cannot decode option ${option}: length is ${data.length}, need ${length}`, { option, length: data.length, allowed: length });
  }
}

/** One IPv4 address (options 1, 50, 54...). */
export function ipv4Value(address: string): Buffer {
  const b = Buffer.alloc(4);
  writeIpv4Address(address, b, 0);
  return b;
}

/** A list of IPv4 addresses (options 3, 6). */
export function ipv4ListValue(addresses: readonly string[]): Buffer {
  return Buffer.concat(addresses.map(ipv4Value));
}

/** 32-bit unsigned (options 51, 58, 59). */
export function uint32Value(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** 16-bit unsigned (option 57). */
export function uint16Value(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

/** 8-bit unsigned (options 53, 52; iPXE 175.176). */
export function uint8Value(n: number): Buffer {
  return Buffer.from([n & 0xff]);
}

/** Text, NUL-free (options 12, 15, 56, 60, 66, 67). */
export function textValue(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** Reads one IPv4 address. */
export function readIpv4Value(data: Buffer, option: number): string {
  need(data, 4, option);
  return readIpv4Address(data, 0);
}

/** Reads a list of IPv4 addresses (length a multiple of 4). */
export function readIpv4ListValue(data: Buffer, option: number): string[] {
  need(data, 4, option);
  const out: string[] = [];
  for (let i = 0; i + 3 < data.length; i += 4) out.push(readIpv4Address(data, i));
  return out;
}

/** Reads a 32-bit unsigned value. */
export function readUint32Value(data: Buffer, option: number): number {
  need(data, 4, option);
  return data.readUInt32BE(0);
}

/** Reads a 16-bit unsigned value. */
export function readUint16Value(data: Buffer, option: number): number {
  need(data, 2, option);
  return data.readUInt16BE(0);
}

/** Reads an 8-bit unsigned value. */
export function readUint8Value(data: Buffer, option: number): number {
  need(data, 1, option);
  return data[0]!;
}

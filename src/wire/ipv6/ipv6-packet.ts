import { DisklessError } from '../../errors/index.js';
import { IPV6_ADDRESS_LENGTH } from './ipv6-address.js';
import { onesComplementSum } from '../checksum/internet-checksum.js';

export { onesComplementSum };

/**
 * The IPv6 fixed header (RFC 8200 §3) and the upper-layer checksum over its pseudo-header
 * (RFC 8200 §8.1), for servers that build whole frames on a raw socket (RA now). Pure.
 * Extension headers are not parsed: `nextHeader` names what follows the fixed header.
 */

export const IPV6_VERSION = 6;
export const IPV6_HEADER_LENGTH = 40;

/** Next Header values this project speaks (IANA "Assigned Internet Protocol Numbers"). */
export const Ipv6NextHeader = {
  hopByHop: 0,
  tcp: 6,
  udp: 17,
  routing: 43,
  fragment: 44,
  icmpv6: 58,
  noNextHeader: 59,
  destinationOptions: 60,
} as const;

export interface Ipv6Header {
  /** 8 bits: DSCP and ECN. */
  readonly trafficClass: number;
  /** 20 bits. */
  readonly flowLabel: number;
  readonly nextHeader: number;
  readonly hopLimit: number;
  /** 16 bytes. */
  readonly source: Buffer;
  /** 16 bytes. */
  readonly destination: Buffer;
}

export interface Ipv6Packet extends Ipv6Header {
  /** The Payload Length field as received. */
  readonly payloadLength: number;
  /** Exactly `payloadLength` bytes after the header (a view into the input); link padding is cut off. */
  readonly payload: Buffer;
}

/**
 * Decodes the fixed header and cuts the payload to Payload Length (Ethernet pads short frames).
 * Throws WIRE_TRUNCATED (shorter than 40 bytes or than Payload Length says) or WIRE_BAD_FIELD
 * (version is not 6; Payload Length 0, which only a jumbogram uses, RFC 2675).
 */
export function decodeIpv6Packet(packet: Buffer): Ipv6Packet {
  if (packet.length < IPV6_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode IPv6 header: packet is ${packet.length} bytes, need ${IPV6_HEADER_LENGTH}`, { layer: 'ipv6', length: packet.length });
  }
  const word = packet.readUInt32BE(0);
  const version = word >>> 28;
  if (version !== IPV6_VERSION) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot decode IPv6 header: version is ${version}`, { layer: 'ipv6', field: 'version', value: version, allowed: [IPV6_VERSION] });
  }
  const payloadLength = packet.readUInt16BE(4);
  const nextHeader = packet[6]!;
  if (payloadLength === 0 && nextHeader === Ipv6NextHeader.hopByHop) {
    throw new DisklessError('WIRE_BAD_FIELD', 'cannot decode IPv6 header: payload length is 0 (jumbograms are not supported)', { layer: 'ipv6', field: 'payloadLength', value: 0, allowed: '1..65535' });
  }
  if (packet.length < IPV6_HEADER_LENGTH + payloadLength) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode IPv6 payload: payload length is ${payloadLength} but ${packet.length - IPV6_HEADER_LENGTH} bytes follow the header`, {
      layer: 'ipv6',
      field: 'payloadLength',
      value: payloadLength,
      available: packet.length - IPV6_HEADER_LENGTH,
    });
  }
  return {
    trafficClass: (word >>> 20) & 0xff,
    flowLabel: word & 0xfffff,
    payloadLength,
    nextHeader,
    hopLimit: packet[7]!,
    source: packet.subarray(8, 24),
    destination: packet.subarray(24, 40),
    payload: packet.subarray(IPV6_HEADER_LENGTH, IPV6_HEADER_LENGTH + payloadLength),
  };
}

/** Encodes header + payload; Payload Length is the payload's length. Throws WIRE_BAD_FIELD for out-of-range fields. */
export function encodeIpv6Packet(header: Ipv6Header, payload: Buffer): Buffer {
  const check = (field: string, value: number, max: number) => {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new DisklessError('WIRE_BAD_FIELD', `cannot encode IPv6 header: ${field} is ${value}`, { layer: 'ipv6', field, value, allowed: `0..${max}` });
    }
  };
  check('trafficClass', header.trafficClass, 0xff);
  check('flowLabel', header.flowLabel, 0xfffff);
  check('nextHeader', header.nextHeader, 0xff);
  check('hopLimit', header.hopLimit, 0xff);
  check('payloadLength', payload.length, 0xffff);
  for (const field of ['source', 'destination'] as const) {
    if (header[field].length !== IPV6_ADDRESS_LENGTH) {
      throw new DisklessError('WIRE_BAD_FIELD', `cannot encode IPv6 header: ${field} is ${header[field].length} bytes`, { layer: 'ipv6', field, value: header[field].length, allowed: [IPV6_ADDRESS_LENGTH] });
    }
  }
  const out = Buffer.alloc(IPV6_HEADER_LENGTH + payload.length);
  out.writeUInt32BE(((IPV6_VERSION << 28) | (header.trafficClass << 20) | header.flowLabel) >>> 0, 0);
  out.writeUInt16BE(payload.length, 4);
  out[6] = header.nextHeader;
  out[7] = header.hopLimit;
  header.source.copy(out, 8);
  header.destination.copy(out, 24);
  payload.copy(out, IPV6_HEADER_LENGTH);
  return out;
}

/**
 * The upper-layer checksum of RFC 8200 §8.1: the one's complement of the sum over the
 * pseudo-header (source, destination, 32-bit upper-layer length, 3 zero bytes, next header)
 * and `upperLayer` (with its checksum field as it is). Encoders call it with the field zeroed
 * and store the result; a receiver calls it over the message as received and gets 0 when the
 * checksum is right.
 */
export function ipv6UpperLayerChecksum(source: Buffer, destination: Buffer, nextHeader: number, upperLayer: Buffer): number {
  let sum = onesComplementSum(source);
  sum = onesComplementSum(destination, sum);
  sum += (upperLayer.length >>> 16) + (upperLayer.length & 0xffff) + nextHeader;
  sum = onesComplementSum(upperLayer, sum);
  return ~sum & 0xffff;
}

import { DisklessError } from '../../errors/index.js';
import { internetChecksum } from '../checksum/internet-checksum.js';

export { internetChecksum };

/**
 * IPv4 (RFC 791) + UDP (RFC 768) codec for the servers that build whole frames themselves
 * (DHCP answers clients that have no address yet, so the kernel's UDP stack cannot send for
 * it). Pure: no sockets. Addresses are dotted quads, the project's canonical form.
 */

/** IP protocol numbers this project speaks (IANA). */
export const IpProtocol = {
  icmp: 1,
  tcp: 6,
  udp: 17,
} as const;

export const IPV4_VERSION = 4;
/** Header without options: IHL 5 (RFC 791 §3.1). */
export const IPV4_MIN_HEADER_LENGTH = 20;
export const UDP_HEADER_LENGTH = 8;
/** Default TTL for datagrams we originate (RFC 1700 recommends 64). */
export const DEFAULT_TTL = 64;

/** Flag bits of the IPv4 flags/fragment-offset word (RFC 791 §3.1). */
export const Ipv4Flag = {
  dontFragment: 0x4000,
  moreFragments: 0x2000,
  fragmentOffsetMask: 0x1fff,
} as const;

/** One UDP datagram in one unfragmented IPv4 packet. */
export interface Ipv4UdpPacket {
  readonly source: string;
  readonly destination: string;
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** Decoded: the received TTL. Encoded: defaults to DEFAULT_TTL. */
  readonly ttl?: number;
  /** Type of service / DSCP+ECN byte; defaults to 0. */
  readonly tos?: number;
  /** Identification field; defaults to 0 (we always set DF, so it is never used for reassembly). */
  readonly identification?: number;
  /** The UDP payload (decoded: a view into the input). */
  readonly payload: Buffer;
}

/** Options of the decoder. */
export interface DecodeIpv4UdpOptions {
  /** Check a non-zero UDP checksum (default true). */
  readonly verifyUdpChecksum?: boolean;
  /**
   * Also accept a UDP checksum field that holds only the folded pseudo-header sum (default
   * false). Linux leaves it so when the sender's kernel offloads the checksum
   * (CHECKSUM_PARTIAL) and the frame crosses a veth or tap without being finished by a NIC;
   * an AF_PACKET socket on the other end then sees that value. Servers reading frames from
   * raw sockets in namespaces set this: the IPv4 header checksum is still verified.
   */
  readonly acceptPartialUdpChecksum?: boolean;
}

/** Parses a dotted quad into 4 bytes at `out[offset]`. Throws WIRE_BAD_FIELD for anything else. */
export function writeIpv4Address(address: string, out: Buffer, offset: number, field = 'address'): void {
  const parts = address.split('.');
  const ok = parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
  if (!ok) throw new DisklessError('WIRE_BAD_FIELD', `cannot encode ${field}: "${address}" is not a dotted-quad IPv4 address`, { field, value: address, allowed: 'a.b.c.d with 0-255 parts' });
  for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
}

/** 4 bytes at `buf[offset]` → dotted quad. The caller has checked the length. */
export function readIpv4Address(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

function foldedSum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudoHeaderSum(ip: Buffer, udpLength: number): number {
  // source + destination addresses (IPv4 header bytes 12..19), zero + protocol, UDP length (RFC 768)
  let s = 0;
  for (let i = 12; i < 20; i += 2) s += (ip[i]! << 8) | ip[i + 1]!;
  return s + IpProtocol.udp + udpLength;
}

/**
 * Encodes `packet` as an IPv4 header (no options, DF set) + UDP header + payload, with both
 * checksums. Throws WIRE_BAD_FIELD for an invalid address or port.
 */
export function encodeIpv4Udp(packet: Ipv4UdpPacket): Buffer {
  for (const [field, port] of [['sourcePort', packet.sourcePort], ['destinationPort', packet.destinationPort]] as const) {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw new DisklessError('WIRE_BAD_FIELD', `cannot encode UDP ${field}: ${port} is not a port number`, { field, value: port, allowed: '0-65535' });
    }
  }
  const udpLength = UDP_HEADER_LENGTH + packet.payload.length;
  const totalLength = IPV4_MIN_HEADER_LENGTH + udpLength;
  if (totalLength > 0xffff) throw new DisklessError('WIRE_BAD_FIELD', `cannot encode IPv4 packet: total length ${totalLength} exceeds 65535`, { field: 'totalLength', value: totalLength, allowed: '<= 65535' });
  const out = Buffer.alloc(totalLength);
  out[0] = (IPV4_VERSION << 4) | (IPV4_MIN_HEADER_LENGTH / 4);
  out[1] = packet.tos ?? 0;
  out.writeUInt16BE(totalLength, 2);
  out.writeUInt16BE(packet.identification ?? 0, 4);
  out.writeUInt16BE(Ipv4Flag.dontFragment, 6);
  out[8] = packet.ttl ?? DEFAULT_TTL;
  out[9] = IpProtocol.udp;
  writeIpv4Address(packet.source, out, 12, 'source');
  writeIpv4Address(packet.destination, out, 16, 'destination');
  out.writeUInt16BE(internetChecksum(out.subarray(0, IPV4_MIN_HEADER_LENGTH)), 10);
  const udp = IPV4_MIN_HEADER_LENGTH;
  out.writeUInt16BE(packet.sourcePort, udp);
  out.writeUInt16BE(packet.destinationPort, udp + 2);
  out.writeUInt16BE(udpLength, udp + 4);
  packet.payload.copy(out, udp + UDP_HEADER_LENGTH);
  const sum = internetChecksum(out.subarray(udp), pseudoHeaderSum(out, udpLength));
  // RFC 768: a computed checksum of zero is sent as all ones (zero means "no checksum").
  out.writeUInt16BE(sum === 0 ? 0xffff : sum, udp + 6);
  return out;
}

function bad(field: string, value: unknown, allowed: string, what: string): DisklessError {
  return new DisklessError('WIRE_BAD_FIELD', `cannot decode IPv4/UDP ${field}: ${what}`, { layer: 'ipv4', field, value, allowed });
}

/**
 * Decodes one IPv4 packet carrying a whole UDP datagram. Bytes after the IPv4 total length
 * (Ethernet padding) are ignored. Throws WIRE_TRUNCATED (shorter than a header or than a
 * length field says), WIRE_BAD_FIELD (version, IHL, not UDP, a fragment, UDP length) or
 * WIRE_BAD_CHECKSUM (IPv4 header, or a non-zero UDP checksum).
 */
export function decodeIpv4Udp(buf: Buffer, options: DecodeIpv4UdpOptions = {}): Ipv4UdpPacket {
  if (buf.length < IPV4_MIN_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode IPv4 header: packet is ${buf.length} bytes, need 20`, { layer: 'ipv4', length: buf.length });
  }
  const version = buf[0]! >>> 4;
  if (version !== IPV4_VERSION) throw bad('version', version, '4', `version is ${version}`);
  const headerLength = (buf[0]! & 0x0f) * 4;
  if (headerLength < IPV4_MIN_HEADER_LENGTH) throw bad('ihl', headerLength / 4, '5-15', `header length is ${headerLength} bytes`);
  const totalLength = buf.readUInt16BE(2);
  if (totalLength < headerLength) throw bad('totalLength', totalLength, `>= ${headerLength}`, `total length ${totalLength} is shorter than the header`);
  if (totalLength > buf.length) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode IPv4 packet: total length is ${totalLength}, only ${buf.length} bytes present`, { layer: 'ipv4', field: 'totalLength', value: totalLength, length: buf.length });
  }
  if (internetChecksum(buf.subarray(0, headerLength)) !== 0) {
    throw new DisklessError('WIRE_BAD_CHECKSUM', 'cannot decode IPv4 header: header checksum does not match', { layer: 'ipv4', field: 'headerChecksum', value: buf.readUInt16BE(10) });
  }
  const fragment = buf.readUInt16BE(6);
  if (fragment & (Ipv4Flag.moreFragments | Ipv4Flag.fragmentOffsetMask)) throw bad('fragment', fragment, 'an unfragmented packet', 'fragments are not reassembled');
  const protocol = buf[9]!;
  if (protocol !== IpProtocol.udp) throw bad('protocol', protocol, String(IpProtocol.udp), `protocol is ${protocol}, not UDP`);
  const ip = buf.subarray(0, totalLength);
  const udp = ip.subarray(headerLength);
  if (udp.length < UDP_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode UDP header: ${udp.length} bytes, need 8`, { layer: 'udp', length: udp.length });
  }
  const udpLength = udp.readUInt16BE(4);
  if (udpLength < UDP_HEADER_LENGTH) throw bad('udpLength', udpLength, '>= 8', `UDP length is ${udpLength}`);
  if (udpLength > udp.length) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode UDP datagram: UDP length is ${udpLength}, only ${udp.length} bytes after the IPv4 header`, { layer: 'udp', field: 'length', value: udpLength, length: udp.length });
  }
  const checksum = udp.readUInt16BE(6);
  if (checksum !== 0 && options.verifyUdpChecksum !== false) {
    const partial = options.acceptPartialUdpChecksum === true && checksum === foldedSum(pseudoHeaderSum(ip, udpLength));
    if (!partial && internetChecksum(udp.subarray(0, udpLength), pseudoHeaderSum(ip, udpLength)) !== 0) {
      throw new DisklessError('WIRE_BAD_CHECKSUM', 'cannot decode UDP datagram: checksum does not match', { layer: 'udp', field: 'checksum', value: checksum });
    }
  }
  return {
    source: readIpv4Address(ip, 12),
    destination: readIpv4Address(ip, 16),
    sourcePort: udp.readUInt16BE(0),
    destinationPort: udp.readUInt16BE(2),
    ttl: ip[8]!,
    tos: ip[1]!,
    identification: ip.readUInt16BE(4),
    payload: udp.subarray(UDP_HEADER_LENGTH, udpLength),
  };
}

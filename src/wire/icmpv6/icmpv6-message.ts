import { DisklessError } from '../../errors/index.js';
import { decodeEthernetFrame, encodeEthernetFrame, EtherType } from '../ethernet/ethernet-frame.js';
import { decodeIpv6Packet, encodeIpv6Packet, ipv6UpperLayerChecksum, Ipv6NextHeader, type Ipv6Header, type Ipv6Packet } from '../ipv6/ipv6-packet.js';

/**
 * The ICMPv6 envelope (RFC 4443 §2.1): type, code, checksum over the IPv6 pseudo-header
 * (§2.3), and the message body. Router discovery (./router-discovery.ts) builds on it. Pure.
 */

/** ICMPv6 Type values this project meets (RFC 4443 §2.1, RFC 4861 §4). */
export const Icmpv6Type = {
  destinationUnreachable: 1,
  packetTooBig: 2,
  timeExceeded: 3,
  parameterProblem: 4,
  echoRequest: 128,
  echoReply: 129,
  routerSolicitation: 133,
  routerAdvertisement: 134,
  neighborSolicitation: 135,
  neighborAdvertisement: 136,
  redirect: 137,
} as const;

export const ICMPV6_HEADER_LENGTH = 4;

export interface Icmpv6Message {
  readonly type: number;
  readonly code: number;
  /** As received. */
  readonly checksum: number;
  /** The whole message (type, code, checksum and body): a view into the input. */
  readonly message: Buffer;
}

/** Options of `decodeIcmpv6Message`. */
export interface DecodeIcmpv6Options {
  /** Verify the checksum (default true). */
  readonly verifyChecksum?: boolean;
}

/**
 * Decodes the ICMPv6 message carried by `packet` (Next Header must be 58: extension headers
 * are not walked). Throws WIRE_BAD_FIELD (another Next Header), WIRE_TRUNCATED (under 4 bytes),
 * WIRE_BAD_CHECKSUM (RFC 4443 §2.3).
 */
export function decodeIcmpv6Message(packet: Ipv6Packet, options: DecodeIcmpv6Options = {}): Icmpv6Message {
  if (packet.nextHeader !== Ipv6NextHeader.icmpv6) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot decode ICMPv6: next header is ${packet.nextHeader}`, { layer: 'icmpv6', field: 'nextHeader', value: packet.nextHeader, allowed: [Ipv6NextHeader.icmpv6] });
  }
  const message = packet.payload;
  if (message.length < ICMPV6_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode ICMPv6 header: message is ${message.length} bytes, need ${ICMPV6_HEADER_LENGTH}`, { layer: 'icmpv6', length: message.length });
  }
  const checksum = message.readUInt16BE(2);
  if (options.verifyChecksum !== false) {
    const residue = ipv6UpperLayerChecksum(packet.source, packet.destination, Ipv6NextHeader.icmpv6, message);
    if (residue !== 0) {
      throw new DisklessError('WIRE_BAD_CHECKSUM', `cannot decode ICMPv6 message type ${message[0]}: checksum 0x${checksum.toString(16)} does not match`, {
        layer: 'icmpv6',
        field: 'checksum',
        value: checksum,
      });
    }
  }
  return { type: message[0]!, code: message[1]!, checksum, message };
}

/**
 * Wraps an encoded ICMPv6 message (checksum field as zero) in an IPv6 packet with Next Header
 * 58, filling in the checksum over the pseudo-header. `message` is not modified.
 */
export function encodeIcmpv6Packet(header: Omit<Ipv6Header, 'nextHeader'>, message: Buffer): Buffer {
  const body = Buffer.from(message);
  body.writeUInt16BE(0, 2);
  body.writeUInt16BE(ipv6UpperLayerChecksum(header.source, header.destination, Ipv6NextHeader.icmpv6, body), 2);
  return encodeIpv6Packet({ ...header, nextHeader: Ipv6NextHeader.icmpv6 }, body);
}

/** One ICMPv6 message in a whole Ethernet frame, as a raw socket delivers it. */
export interface Icmpv6Frame {
  readonly destinationMac: Buffer;
  readonly sourceMac: Buffer;
  readonly ipv6: Ipv6Packet;
  readonly icmpv6: Icmpv6Message;
}

/**
 * Ethernet → IPv6 → ICMPv6 in one call (the RA server's receive path and the fuzz target).
 * Throws WIRE_BAD_FIELD when the frame is not IPv6, plus every error of the layers below.
 */
export function decodeIcmpv6Frame(frame: Buffer, options: DecodeIcmpv6Options = {}): Icmpv6Frame {
  const eth = decodeEthernetFrame(frame);
  if (eth.etherType !== EtherType.ipv6) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot decode ICMPv6 frame: EtherType is 0x${eth.etherType.toString(16)}`, { layer: 'ethernet', field: 'etherType', value: eth.etherType, allowed: [EtherType.ipv6] });
  }
  const ipv6 = decodeIpv6Packet(eth.payload);
  return { destinationMac: eth.destination, sourceMac: eth.source, ipv6, icmpv6: decodeIcmpv6Message(ipv6, options) };
}

/** Builds a whole Ethernet frame carrying `message` (checksum filled in). */
export function encodeIcmpv6Frame(destinationMac: Buffer, sourceMac: Buffer, header: Omit<Ipv6Header, 'nextHeader'>, message: Buffer): Buffer {
  return encodeEthernetFrame(destinationMac, sourceMac, EtherType.ipv6, encodeIcmpv6Packet(header, message));
}

import { DisklessError } from '../../errors/index.js';
import { Icmpv6Type } from './icmpv6-message.js';
import { decodeNdpOptions, encodeNdpOptions, type NdpOption } from './ndp-options.js';

/**
 * Router Solicitation and Router Advertisement messages (RFC 4861 §4.1, §4.2): the whole
 * ICMPv6 message from the Type byte on. Decoders check structure only (type, length, option
 * framing); the receive-side validity rules of §6.1 (hop limit 255, code 0, ...) belong to the
 * server, which counts each failure. Encoders leave the checksum zero: wrap the result with
 * `encodeIcmpv6Packet`, which fills it in. Pure.
 */

/** Fixed part before the options: type, code, checksum + 4 reserved bytes (§4.1). */
export const ROUTER_SOLICITATION_LENGTH = 8;
/** Type, code, checksum, hop limit, flags, router lifetime, reachable time, retrans timer (§4.2). */
export const ROUTER_ADVERTISEMENT_LENGTH = 16;

/** Bits of the RA flags byte (RFC 4861 §4.2; H from RFC 6275 §7.1; Prf from RFC 4191 §2.2). */
export const RouterAdvertisementFlag = {
  /** M: addresses are available via DHCPv6. */
  managed: 0x80,
  /** O: other configuration is available via DHCPv6. */
  other: 0x40,
  /** H: Mobile IPv6 home agent. */
  homeAgent: 0x20,
  /** Prf: default router preference, 2 bits. */
  preferenceMask: 0x18,
} as const;

export interface RouterSolicitation {
  readonly code: number;
  /** The Reserved field as received (senders set 0, receivers ignore it). */
  readonly reserved: number;
  readonly options: readonly NdpOption[];
}

export interface RouterAdvertisement {
  readonly code: number;
  /** Cur Hop Limit hosts should use; 0 = unspecified. */
  readonly curHopLimit: number;
  /** RouterAdvertisementFlag bits and the reserved ones, as a byte. */
  readonly flags: number;
  /** Seconds this router may serve as default router; 0 = not a default router (§4.2). */
  readonly routerLifetime: number;
  /** Milliseconds; 0 = unspecified. */
  readonly reachableTime: number;
  /** Milliseconds; 0 = unspecified. */
  readonly retransTimer: number;
  readonly options: readonly NdpOption[];
}

function checkType(message: Buffer, type: number, name: string, minLength: number): void {
  if (message.length < minLength) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode ${name}: message is ${message.length} bytes, need ${minLength}`, { layer: 'icmpv6', length: message.length });
  }
  if (message[0] !== type) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot decode ${name}: ICMPv6 type is ${message[0]}`, { layer: 'icmpv6', field: 'type', value: message[0], allowed: [type] });
  }
}

/** Decodes an RS (type 133). Throws WIRE_TRUNCATED / WIRE_BAD_FIELD. */
export function decodeRouterSolicitation(message: Buffer): RouterSolicitation {
  checkType(message, Icmpv6Type.routerSolicitation, 'router solicitation', ROUTER_SOLICITATION_LENGTH);
  return { code: message[1]!, reserved: message.readUInt32BE(4), options: decodeNdpOptions(message.subarray(ROUTER_SOLICITATION_LENGTH)) };
}

/** Decodes an RA (type 134). Throws WIRE_TRUNCATED / WIRE_BAD_FIELD. */
export function decodeRouterAdvertisement(message: Buffer): RouterAdvertisement {
  checkType(message, Icmpv6Type.routerAdvertisement, 'router advertisement', ROUTER_ADVERTISEMENT_LENGTH);
  return {
    code: message[1]!,
    curHopLimit: message[4]!,
    flags: message[5]!,
    routerLifetime: message.readUInt16BE(6),
    reachableTime: message.readUInt32BE(8),
    retransTimer: message.readUInt32BE(12),
    options: decodeNdpOptions(message.subarray(ROUTER_ADVERTISEMENT_LENGTH)),
  };
}

function field(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot encode ${name}: value is ${value}`, { layer: 'icmpv6', field: name, value, allowed: `0..${max}` });
  }
  return value;
}

/** Encodes an RS, checksum zero. */
export function encodeRouterSolicitation(rs: RouterSolicitation): Buffer {
  const head = Buffer.alloc(ROUTER_SOLICITATION_LENGTH);
  head[0] = Icmpv6Type.routerSolicitation;
  head[1] = field('code', rs.code, 0xff);
  head.writeUInt32BE(field('reserved', rs.reserved, 0xffffffff), 4);
  return Buffer.concat([head, encodeNdpOptions(rs.options)]);
}

/** Encodes an RA, checksum zero. */
export function encodeRouterAdvertisement(ra: RouterAdvertisement): Buffer {
  const head = Buffer.alloc(ROUTER_ADVERTISEMENT_LENGTH);
  head[0] = Icmpv6Type.routerAdvertisement;
  head[1] = field('code', ra.code, 0xff);
  head[4] = field('curHopLimit', ra.curHopLimit, 0xff);
  head[5] = field('flags', ra.flags, 0xff);
  head.writeUInt16BE(field('routerLifetime', ra.routerLifetime, 0xffff), 6);
  head.writeUInt32BE(field('reachableTime', ra.reachableTime, 0xffffffff), 8);
  head.writeUInt32BE(field('retransTimer', ra.retransTimer, 0xffffffff), 12);
  return Buffer.concat([head, encodeNdpOptions(ra.options)]);
}

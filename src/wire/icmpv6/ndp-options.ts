import { DisklessError } from '../../errors/index.js';
import { IPV6_ADDRESS_LENGTH } from '../ipv6/ipv6-address.js';

/**
 * Neighbor Discovery options (RFC 4861 §4.6): the TLV list that ends router solicitations and
 * advertisements. Lengths count 8-byte units, including the type and length bytes. Pure.
 * Unknown options are kept as raw bytes (receivers ignore them, §4.6), so decode→encode
 * reproduces the input exactly.
 */

/** Option Type values (RFC 4861 §4.6; IANA "IPv6 Neighbor Discovery Option Formats"). */
export const NdpOptionType = {
  sourceLinkLayerAddress: 1,
  targetLinkLayerAddress: 2,
  prefixInformation: 3,
  redirectedHeader: 4,
  mtu: 5,
} as const;

/** Bits of the Prefix Information flags byte (RFC 4861 §4.6.2; R from RFC 6275 §7.2). */
export const PrefixFlag = {
  /** L: the prefix is on-link. */
  onLink: 0x80,
  /** A: hosts may form addresses from it (SLAAC, RFC 4862). */
  autonomous: 0x40,
  /** R: the prefix field holds the router's full address (Mobile IPv6). */
  routerAddress: 0x20,
} as const;

export const NDP_OPTION_UNIT = 8;
/** Prefix Information is always 4 units (32 bytes), MTU always 1 (§4.6.2, §4.6.4). */
export const PREFIX_INFORMATION_UNITS = 4;
export const MTU_OPTION_UNITS = 1;
/** A lifetime of all ones means infinity (§4.6.2). */
export const INFINITE_LIFETIME = 0xffffffff;

export interface LinkLayerAddressOption {
  readonly kind: 'sourceLinkLayerAddress' | 'targetLinkLayerAddress';
  /** The option body: the address and any padding to 8 bytes (6 bytes on Ethernet, §4.6.1 / RFC 2464 §8). */
  readonly address: Buffer;
}

export interface PrefixInformationOption {
  readonly kind: 'prefixInformation';
  readonly prefixLength: number;
  /** PrefixFlag bits; the low 5 bits are Reserved1. */
  readonly flags: number;
  /** Seconds; INFINITE_LIFETIME for ever. */
  readonly validLifetime: number;
  readonly preferredLifetime: number;
  readonly reserved2: number;
  /** 16 bytes. */
  readonly prefix: Buffer;
}

export interface MtuOption {
  readonly kind: 'mtu';
  readonly reserved: number;
  readonly mtu: number;
}

export interface UnknownNdpOption {
  readonly kind: 'unknown';
  readonly type: number;
  /** Everything after the type and length bytes. */
  readonly data: Buffer;
}

export type NdpOption = LinkLayerAddressOption | PrefixInformationOption | MtuOption | UnknownNdpOption;

function badLength(type: number, units: number, allowed: unknown): DisklessError {
  return new DisklessError('WIRE_BAD_FIELD', `cannot decode ND option ${type}: length is ${units}`, { layer: 'ndp', field: `option ${type} length`, value: units, allowed });
}

/**
 * Decodes the options area of an ND message. Throws WIRE_BAD_FIELD for a zero length (§4.6:
 * nodes must discard such packets) or a wrong fixed length, WIRE_TRUNCATED when an option runs
 * past the end or bytes that cannot hold an option header remain.
 */
export function decodeNdpOptions(area: Buffer): NdpOption[] {
  const out: NdpOption[] = [];
  let off = 0;
  while (off < area.length) {
    if (area.length - off < 2) {
      throw new DisklessError('WIRE_TRUNCATED', `cannot decode ND option at offset ${off}: ${area.length - off} byte left, need 2`, { layer: 'ndp', offset: off });
    }
    const type = area[off]!;
    const units = area[off + 1]!;
    if (units === 0) throw badLength(type, 0, '1..255 (0 is invalid, RFC 4861 §4.6)');
    const end = off + units * NDP_OPTION_UNIT;
    if (end > area.length) {
      throw new DisklessError('WIRE_TRUNCATED', `cannot decode ND option ${type}: length is ${units * NDP_OPTION_UNIT} bytes but ${area.length - off} remain`, {
        layer: 'ndp',
        field: `option ${type} length`,
        value: units,
        available: area.length - off,
      });
    }
    const body = area.subarray(off + 2, end);
    switch (type) {
      case NdpOptionType.sourceLinkLayerAddress:
      case NdpOptionType.targetLinkLayerAddress:
        out.push({ kind: type === NdpOptionType.sourceLinkLayerAddress ? 'sourceLinkLayerAddress' : 'targetLinkLayerAddress', address: body });
        break;
      case NdpOptionType.prefixInformation:
        if (units !== PREFIX_INFORMATION_UNITS) throw badLength(type, units, [PREFIX_INFORMATION_UNITS]);
        if (body[0]! > 128) {
          throw new DisklessError('WIRE_BAD_FIELD', `cannot decode ND option 3: prefix length is ${body[0]}`, { layer: 'ndp', field: 'prefixLength', value: body[0], allowed: '0..128' });
        }
        out.push({
          kind: 'prefixInformation',
          prefixLength: body[0]!,
          flags: body[1]!,
          validLifetime: body.readUInt32BE(2),
          preferredLifetime: body.readUInt32BE(6),
          reserved2: body.readUInt32BE(10),
          prefix: body.subarray(14, 14 + IPV6_ADDRESS_LENGTH),
        });
        break;
      case NdpOptionType.mtu:
        if (units !== MTU_OPTION_UNITS) throw badLength(type, units, [MTU_OPTION_UNITS]);
        out.push({ kind: 'mtu', reserved: body.readUInt16BE(0), mtu: body.readUInt32BE(2) });
        break;
      default:
        out.push({ kind: 'unknown', type, data: body });
    }
    off = end;
  }
  return out;
}

function badEncode(field: string, value: unknown, allowed: string): DisklessError {
  return new DisklessError('WIRE_BAD_FIELD', `cannot encode ND option: ${field} is ${JSON.stringify(value)}`, { layer: 'ndp', field, value, allowed });
}

function u(field: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw badEncode(field, value, `0..${max}`);
  return value;
}

/** Encodes one option, padding variable bodies with zeros to a multiple of 8 bytes. */
export function encodeNdpOption(option: NdpOption): Buffer {
  switch (option.kind) {
    case 'sourceLinkLayerAddress':
    case 'targetLinkLayerAddress':
      return tlv(option.kind === 'sourceLinkLayerAddress' ? NdpOptionType.sourceLinkLayerAddress : NdpOptionType.targetLinkLayerAddress, option.address);
    case 'prefixInformation': {
      if (option.prefix.length !== IPV6_ADDRESS_LENGTH) throw badEncode('prefix', option.prefix.length, '16 bytes');
      const body = Buffer.alloc(30);
      body[0] = u('prefixLength', option.prefixLength, 128);
      body[1] = u('flags', option.flags, 0xff);
      body.writeUInt32BE(u('validLifetime', option.validLifetime, 0xffffffff), 2);
      body.writeUInt32BE(u('preferredLifetime', option.preferredLifetime, 0xffffffff), 6);
      body.writeUInt32BE(u('reserved2', option.reserved2, 0xffffffff), 10);
      option.prefix.copy(body, 14);
      return tlv(NdpOptionType.prefixInformation, body);
    }
    case 'mtu': {
      const body = Buffer.alloc(6);
      body.writeUInt16BE(u('reserved', option.reserved, 0xffff), 0);
      body.writeUInt32BE(u('mtu', option.mtu, 0xffffffff), 2);
      return tlv(NdpOptionType.mtu, body);
    }
    case 'unknown':
      return tlv(u('type', option.type, 0xff), option.data);
  }
}

/** Encodes the options area. */
export function encodeNdpOptions(options: readonly NdpOption[]): Buffer {
  return Buffer.concat(options.map(encodeNdpOption));
}

function tlv(type: number, body: Buffer): Buffer {
  const units = Math.ceil((body.length + 2) / NDP_OPTION_UNIT);
  if (units > 0xff) throw badEncode(`option ${type} length`, body.length, `at most ${0xff * NDP_OPTION_UNIT - 2} bytes`);
  const out = Buffer.alloc(units * NDP_OPTION_UNIT);
  out[0] = type;
  out[1] = units;
  body.copy(out, 2);
  return out;
}

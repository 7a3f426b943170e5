import { DisklessError } from '../../errors/index.js';

/**
 * IPv6 addresses as 16-byte Buffers (the wire form) and as RFC 5952 text (logs, config):
 * parsing, canonical formatting, the EUI-64 link-local address of a MAC (RFC 4291 §2.5.1,
 * App. A) and the Ethernet multicast MAC of a group (RFC 2464 §7). Pure.
 */

export const IPV6_ADDRESS_LENGTH = 16;

/** Well-known addresses (RFC 4291 §2.7.1). */
export const Ipv6Address = {
  unspecified: '::',
  allNodes: 'ff02::1',
  allRouters: 'ff02::2',
} as const;

function bad(field: string, value: string, why: string): DisklessError {
  return new DisklessError('WIRE_BAD_FIELD', `cannot parse ${field}: "${value}" ${why}`, { field, value, allowed: 'an IPv6 address in RFC 4291 §2.2 text form' });
}

/** Parses RFC 4291 §2.2 text (with `::` and an optional trailing dotted quad) into 16 bytes. */
export function parseIpv6Address(text: string, field = 'address'): Buffer {
  if (typeof text !== 'string' || text.length === 0 || text.length > 45) throw bad(field, String(text), 'is not an IPv6 address');
  const halves = text.split('::');
  if (halves.length > 2) throw bad(field, text, 'has more than one "::"');
  if (halves.length === 2 && halves[0]!.includes('.')) throw bad(field, text, 'has an IPv4 part before "::"');
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    pieces.forEach((p, i) => {
      if (i === pieces.length - 1 && p.includes('.')) {
        const q = p.split('.');
        if (q.length !== 4 || !q.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)) throw bad(field, text, 'has a bad embedded IPv4 part');
        out.push((Number(q[0]) << 8) | Number(q[1]), (Number(q[2]) << 8) | Number(q[3]));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else throw bad(field, text, `has a bad group "${p}"`);
    });
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) throw bad(field, text, 'does not have 8 groups');
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = Buffer.alloc(IPV6_ADDRESS_LENGTH);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** 16 bytes → RFC 5952 canonical text (lower case, longest run of ≥ 2 zero groups as `::`). */
export function formatIpv6Address(address: Buffer): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(address.readUInt16BE(i * 2));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** An IPv6 prefix as in "fd00:77::/64". */
export interface Ipv6Prefix {
  /** 16 bytes, bits beyond `length` zeroed. */
  readonly address: Buffer;
  readonly length: number;
}

/** Parses "addr/len" (0..128); host bits must be zero. Throws WIRE_BAD_FIELD. */
export function parseIpv6Prefix(text: string, field = 'prefix'): Ipv6Prefix {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(typeof text === 'string' ? text : '');
  if (!m || Number(m[2]) > 128) {
    throw new DisklessError('WIRE_BAD_FIELD', `cannot parse ${field}: "${String(text)}" is not an IPv6 prefix`, { field, value: text, allowed: 'address/length with length 0..128, e.g. fd00:77::/64' });
  }
  const address = parseIpv6Address(m[1]!, field);
  const length = Number(m[2]);
  for (let bit = length; bit < 128; bit++) {
    if (address[bit >> 3]! & (0x80 >> (bit & 7))) {
      throw new DisklessError('WIRE_BAD_FIELD', `cannot parse ${field}: "${text}" has bits set beyond /${length}`, { field, value: text, allowed: `an address whose last ${128 - length} bits are zero` });
    }
  }
  return { address, length };
}

/**
 * The modified EUI-64 interface identifier of a 48-bit MAC (RFC 4291 App. A: insert ff:fe,
 * invert the universal/local bit) under fe80::/64 (RFC 4862 §5.3).
 */
export function linkLocalFromMac(mac: Buffer): Buffer {
  const out = Buffer.alloc(IPV6_ADDRESS_LENGTH);
  out[0] = 0xfe;
  out[1] = 0x80;
  out[8] = mac[0]! ^ 0x02;
  out[9] = mac[1]!;
  out[10] = mac[2]!;
  out[11] = 0xff;
  out[12] = 0xfe;
  out[13] = mac[3]!;
  out[14] = mac[4]!;
  out[15] = mac[5]!;
  return out;
}

/** Ethernet destination for an IPv6 multicast group: 33:33 + its last 32 bits (RFC 2464 §7). */
export function multicastMac(group: Buffer): Buffer {
  return Buffer.from([0x33, 0x33, group[12]!, group[13]!, group[14]!, group[15]!]);
}

/** ff00::/8 (RFC 4291 §2.7). */
export function isMulticast(address: Buffer): boolean {
  return address[0] === 0xff;
}

/** :: (RFC 4291 §2.5.2). */
export function isUnspecified(address: Buffer): boolean {
  return address.length === IPV6_ADDRESS_LENGTH && address.every((b) => b === 0);
}

/** fe80::/10 (RFC 4291 §2.5.6). */
export function isLinkLocal(address: Buffer): boolean {
  return address[0] === 0xfe && (address[1]! & 0xc0) === 0x80;
}

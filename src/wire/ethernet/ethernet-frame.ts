import { DisklessError } from '../../errors/index.js';

/** EtherType values this project speaks (IEEE 802 numbers). */
export const EtherType = {
  ipv4: 0x0800,
  arp: 0x0806,
  vlan: 0x8100,
  ipv6: 0x86dd,
  aoe: 0x88a2,
} as const;

export const ETHERNET_HEADER_LENGTH = 14;
export const BROADCAST_MAC = Buffer.from('ffffffffffff', 'hex');

export interface EthernetFrame {
  /** 6 bytes. */
  readonly destination: Buffer;
  /** 6 bytes. */
  readonly source: Buffer;
  readonly etherType: number;
  /** 802.1Q VLAN id when the frame was tagged. */
  readonly vlan?: number;
  /** Everything after the header (a view into the input, not a copy). */
  readonly payload: Buffer;
}

/** Decodes an Ethernet II header (with at most one 802.1Q tag). Pure; the payload is a view. */
export function decodeEthernetFrame(frame: Buffer): EthernetFrame {
  if (frame.length < ETHERNET_HEADER_LENGTH) {
    throw new DisklessError('WIRE_TRUNCATED', `cannot decode Ethernet header: frame is ${frame.length} bytes, need 14`, { layer: 'ethernet', length: frame.length });
  }
  let etherType = frame.readUInt16BE(12);
  let offset = ETHERNET_HEADER_LENGTH;
  let vlan: number | undefined;
  if (etherType === EtherType.vlan) {
    if (frame.length < 18) throw new DisklessError('WIRE_TRUNCATED', `cannot decode 802.1Q tag: frame is ${frame.length} bytes, need 18`, { layer: 'ethernet', length: frame.length });
    vlan = frame.readUInt16BE(14) & 0x0fff;
    etherType = frame.readUInt16BE(16);
    offset = 18;
  }
  return {
    destination: frame.subarray(0, 6),
    source: frame.subarray(6, 12),
    etherType,
    ...(vlan === undefined ? {} : { vlan }),
    payload: frame.subarray(offset),
  };
}

/** Encodes an untagged Ethernet II frame. `destination` and `source` must be 6 bytes. */
export function encodeEthernetFrame(destination: Buffer, source: Buffer, etherType: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(ETHERNET_HEADER_LENGTH + payload.length);
  destination.copy(out, 0, 0, 6);
  source.copy(out, 6, 0, 6);
  out.writeUInt16BE(etherType, 12);
  payload.copy(out, ETHERNET_HEADER_LENGTH);
  return out;
}

/** "52:54:00:12:34:56" → 6 bytes. The caller has validated the text. */
export function macToBuffer(mac: string): Buffer {
  return Buffer.from(mac.replace(/[:-]/g, ''), 'hex');
}

/** 6 bytes → "52:54:00:12:34:56" (lower case, the project's canonical form). */
export function macToString(mac: Buffer): string {
  return Array.from(mac.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

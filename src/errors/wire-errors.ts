import type { ErrorTable } from './error-spec.js';

/** Errors shared by the link/network-layer codecs in src/wire (ethernet, ipv4-udp, ipv6). */
export const wireErrors = {
  WIRE_TRUNCATED: { summary: 'a frame or header is shorter than its fixed part or than a length field says', retryable: false },
  WIRE_BAD_FIELD: { summary: 'a header field has a value the protocol does not allow (version, header length, address length)', retryable: false },
  WIRE_BAD_CHECKSUM: { summary: 'an IPv4, UDP or ICMPv6 checksum does not match the data', retryable: false },
} as const satisfies ErrorTable;

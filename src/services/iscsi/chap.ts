/**
 * CHAP with MD5 (RFC 1994 §4.1; RFC 7143 §12.1.3), target side: checking the initiator's
 * response and answering its challenge (mutual CHAP). Pure; the random challenge comes from
 * the caller (crypto.randomBytes in the server) so tests are deterministic.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** CHAP_A value for MD5 (RFC 1994 / IANA PPP authentication algorithm 5). */
export const CHAP_ALGORITHM_MD5 = 5;
/** Challenge length in bytes: RFC 7143 §12.1.3 asks for at least as long as the response (16). */
export const CHAP_CHALLENGE_LENGTH = 32;
/** Longest binary value accepted for CHAP_R / CHAP_C (RFC 7143 §12.1.3: up to 1024 bytes). */
export const MAX_CHAP_BINARY = 1024;

/** MD5(identifier || secret || challenge) (RFC 1994 §4.1). */
export function chapResponse(identifier: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([identifier & 0xff])).update(Buffer.from(secret, 'utf8')).update(challenge).digest();
}

/**
 * Decodes an iSCSI binary value (RFC 7143 §6.1): `0x` + hex or `0b` + base64, case-insensitive
 * prefix. Returns null when malformed, empty or longer than `max` bytes.
 */
export function decodeBinaryValue(value: string, max = MAX_CHAP_BINARY): Buffer | null {
  const prefix = value.slice(0, 2).toLowerCase();
  const body = value.slice(2);
  let out: Buffer;
  if (prefix === '0x') {
    // an odd number of digits has an implied leading zero (§6.1)
    const hex = body.length % 2 ? `0${body}` : body;
    if (!/^[0-9a-fA-F]+$/.test(hex)) return null;
    out = Buffer.from(hex, 'hex');
  } else if (prefix === '0b') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) return null;
    out = Buffer.from(body, 'base64');
  } else return null;
  return out.length > 0 && out.length <= max ? out : null;
}

/** Encodes bytes as an iSCSI hex binary value (`0x...`). */
export function encodeBinaryValue(b: Buffer): string {
  return `0x${b.toString('hex')}`;
}

/**
 * True when `response` is the right answer for (identifier, secret, challenge). Constant time
 * in the response contents (lengths are public: MD5 is always 16 bytes).
 */
export function verifyChapResponse(identifier: number, secret: string, challenge: Buffer, response: Buffer): boolean {
  const want = chapResponse(identifier, secret, challenge);
  return response.length === want.length && timingSafeEqual(response, want);
}

/** Constant-time comparison of two names (CHAP_N against the configured username). */
export function sameName(a: string, b: string): boolean {
  const x = createHash('sha256').update(a, 'utf8').digest();
  const y = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(x, y);
}

/** Constant-time comparison of two secrets (mutual CHAP refuses one secret used both ways). */
export function sameSecret(a: string, b: string): boolean {
  return sameName(a, b);
}

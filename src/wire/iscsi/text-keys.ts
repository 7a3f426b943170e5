/**
 * The key=value text format of Login and Text PDUs (RFC 7143 §6.1): UTF-8 pairs, each
 * terminated by a NUL. Pure; order and duplicates are preserved so the negotiator can tell
 * a key sent twice (a protocol error, §6.2) from one sent once.
 */
import { DisklessError } from '../../errors/index.js';

/** One key=value pair, in the order received. */
export interface TextPair {
  readonly key: string;
  readonly value: string;
}

/** §6.1: key names are at most 63 bytes of letters, digits and . - + @ _ . */
export const MAX_KEY_LENGTH = 63;
/**
 * Longest value accepted by the codec. Standard text values are limited to 255 bytes
 * (§6.1), but binary values (CHAP_C/CHAP_R, §12.1.3) and SendTargets lists are longer; the
 * negotiator applies per-key limits. 8192 is the most a login data segment can carry.
 */
export const MAX_VALUE_LENGTH = 8192;
const KEY_PATTERN = /^[A-Za-z0-9.\-+@_]+$/;

/**
 * Parses a text data segment. An empty segment is no pairs. Throws ISCSI_BAD_TEXT for a
 * pair without '=', a bad or overlong key, an overlong value, or a missing final NUL.
 */
export function decodeTextKeys(data: Buffer): TextPair[] {
  const out: TextPair[] = [];
  let start = 0;
  while (start < data.length) {
    const end = data.indexOf(0, start);
    if (end < 0) {
      throw new DisklessError('ISCSI_BAD_TEXT', `cannot decode text keys: the pair at byte ${start} is not NUL-terminated`, { field: 'text', offset: start });
    }
    const eq = data.indexOf(0x3d, start); // '='
    if (eq < 0 || eq > end) {
      throw new DisklessError('ISCSI_BAD_TEXT', `cannot decode text keys: the pair at byte ${start} has no '='`, { field: 'text', offset: start, value: data.toString('latin1', start, Math.min(end, start + 64)) });
    }
    const key = data.toString('latin1', start, eq);
    if (eq - start > MAX_KEY_LENGTH || !KEY_PATTERN.test(key)) {
      throw new DisklessError('ISCSI_BAD_TEXT', `cannot decode text keys: key ${JSON.stringify(key.slice(0, 64))} is not 1-63 of A-Z a-z 0-9 . - + @ _`, { field: 'key', value: key.slice(0, 64), offset: start });
    }
    if (end - eq - 1 > MAX_VALUE_LENGTH) {
      throw new DisklessError('ISCSI_BAD_TEXT', `cannot decode text keys: value of ${key} is ${end - eq - 1} bytes, more than ${MAX_VALUE_LENGTH}`, { field: key, length: end - eq - 1, max: MAX_VALUE_LENGTH });
    }
    out.push({ key, value: data.toString('utf8', eq + 1, end) });
    start = end + 1;
  }
  return out;
}

/** Serialises pairs as `key=value\0...`. Throws ISCSI_BAD_TEXT for an illegal key or a NUL in a value. */
export function encodeTextKeys(pairs: readonly TextPair[]): Buffer {
  const parts: string[] = [];
  for (const { key, value } of pairs) {
    if (key.length > MAX_KEY_LENGTH || !KEY_PATTERN.test(key)) throw new DisklessError('ISCSI_BAD_TEXT', `cannot encode text key ${JSON.stringify(key)}`, { field: 'key', value: key });
    if (value.includes('\0')) throw new DisklessError('ISCSI_BAD_TEXT', `cannot encode value of ${key}: it contains NUL`, { field: key });
    parts.push(`${key}=${value}\0`);
  }
  return Buffer.from(parts.join(''), 'utf8');
}

/** Shorthand for building pair lists: `pairs(['HeaderDigest', 'None'], ...)`. */
export function pairs(...kv: ReadonlyArray<readonly [string, string]>): TextPair[] {
  return kv.map(([key, value]) => ({ key, value }));
}

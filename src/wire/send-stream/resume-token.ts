/**
 * Resume tokens (`zfs send -t` / `receive -s` style): what a receiver hands back after an
 * interrupted resumable receive, and what the sender needs to continue it. A token is
 * base64url (RFC 4648 §5, no padding) of:
 *
 *   u8 token version (1) · u8[3] reserved (0) · u64 stream bytes received so far ·
 *   the HEADER payload of the resumed stream (flag "resumed" set: its start position is the
 *   position after the last record the receiver kept) · u32 CRC32C of everything before it.
 *
 * The receiver checks a resumed stream against the state it saved (`checkContinuation`, done
 * by the decoder when given `resume`); the sender checks the token against its own snapshot
 * (`resumedHeader`). Both compare the stream's identity: kind, guids, volume and block size.
 */
import { Crc32c } from '../checksum/crc32c.js';
import { checkHeader, decodeHeaderPayload, encodeHeaderPayload, hex32, MAX_HEADER_PAYLOAD, type FieldFailure } from './send-stream-records.js';
import { HEADER_FIXED_LENGTH, readU64, streamError, writeU64, type SendStreamHeader, type StreamErrorFacts, type StreamPosition } from './send-stream-format.js';

/** Version byte of the token layout. */
export const RESUME_TOKEN_VERSION = 1;
const TOKEN_PREFIX = 12;
const TOKEN_CRC = 4;
const MIN_TOKEN_BYTES = TOKEN_PREFIX + HEADER_FIXED_LENGTH + 4 + TOKEN_CRC;
/** Longest token string accepted (a header with two 255-byte names, base64url). */
export const MAX_RESUME_TOKEN_LENGTH = Math.ceil(((TOKEN_PREFIX + MAX_HEADER_PAYLOAD + TOKEN_CRC) * 4) / 3);

/** Everything a token carries: the interrupted stream's identity, where to continue, progress. */
export interface ResumeState {
  /** The interrupted stream's header (its own `resume` field is not used here). */
  readonly header: SendStreamHeader;
  /** The position after the last record the receiver kept: the resumed stream starts there. */
  readonly position: StreamPosition;
  /** Stream bytes received and kept so far, for progress reports (not checked). */
  readonly bytes: number;
}

const crc = new Crc32c();

/** The token string for `state`. Throws STORE_STREAM_INVALID when the header or position is not valid. */
export function encodeResumeToken(state: ResumeState): string {
  const fail = tokenFailure('encode resume token');
  const header: SendStreamHeader = { ...state.header, resume: state.position };
  checkHeader(header, fail);
  if (!Number.isSafeInteger(state.bytes) || state.bytes < 0) fail({ reason: 'corrupt', field: 'resumeToken.bytes', value: state.bytes, allowed: '0 to 2^53-1' });
  const payload = encodeHeaderPayload(header);
  const b = Buffer.alloc(TOKEN_PREFIX + payload.length + TOKEN_CRC);
  b[0] = RESUME_TOKEN_VERSION;
  writeU64(b, state.bytes, 4);
  payload.copy(b, TOKEN_PREFIX);
  b.writeUInt32BE(crc.of(b.subarray(0, b.length - TOKEN_CRC)), b.length - TOKEN_CRC);
  return b.toString('base64url');
}

/** Parses a token. Throws STORE_STREAM_INVALID naming the field when it is not one this code wrote. */
export function decodeResumeToken(token: string): ResumeState {
  const fail = tokenFailure('decode resume token');
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_RESUME_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) {
    fail({ reason: 'corrupt', field: 'resumeToken', value: typeof token === 'string' ? `${token.length} characters` : typeof token, allowed: `1-${MAX_RESUME_TOKEN_LENGTH} base64url characters (A-Z a-z 0-9 - _)` });
  }
  const b = Buffer.from(token, 'base64url');
  if (b.length < MIN_TOKEN_BYTES) fail({ reason: 'corrupt', field: 'resumeToken.length', value: `${b.length} bytes`, allowed: `at least ${MIN_TOKEN_BYTES} bytes` });
  const sum = crc.of(b.subarray(0, b.length - TOKEN_CRC));
  if (b.readUInt32BE(b.length - TOKEN_CRC) !== sum) fail({ reason: 'corrupt', field: 'resumeToken.crc', value: hex32(b.readUInt32BE(b.length - TOKEN_CRC)), allowed: `${hex32(sum)} (the token was altered or cut short)` });
  if (b[0] !== RESUME_TOKEN_VERSION) fail({ reason: 'unsupported', field: 'resumeToken.version', value: b[0], allowed: String(RESUME_TOKEN_VERSION) });
  if (b[1] !== 0 || b.readUInt16BE(2) !== 0) fail({ reason: 'corrupt', field: 'resumeToken.reserved', value: b.subarray(1, 4).toString('hex'), allowed: '000000' });
  const bytes = readU64(b, 4) ?? fail({ reason: 'corrupt', field: 'resumeToken.bytes', value: b.readBigUInt64BE(4).toString(), allowed: '0 to 2^53-1' });
  const header = decodeHeaderPayload(b.subarray(TOKEN_PREFIX, b.length - TOKEN_CRC), fail);
  if (!header.resume) fail({ reason: 'corrupt', field: 'resumeToken.resumed', value: 0, allowed: '1 (a token states a resume position)' });
  return { header: { ...header, resume: undefined }, position: header.resume!, bytes };
}

/**
 * Sender side: the header for `send --resume TOKEN`. `own` is the header the sender would write
 * for a fresh stream of its snapshot; the token must name the same stream (kind, snapshot and
 * base guids, volume and block size), else STORE_STREAM_INVALID with reason "mismatch".
 */
export function resumedHeader(own: SendStreamHeader, state: ResumeState): SendStreamHeader {
  checkIdentity(own, state.header, 'resumeToken', "the snapshot's", tokenFailure('resume send from token'));
  return { ...own, resume: state.position };
}

/**
 * Receiver side: checks that a resumed stream's `header` continues the interrupted receive
 * saved as `state`: same identity, and a start position equal to the saved one (offset,
 * sequence, totals and digest). Any difference is a mismatched splice: STORE_STREAM_INVALID,
 * reason "mismatch". The decoder calls this when given `resume`.
 */
export function checkContinuation(state: ResumeState, header: SendStreamHeader, fail: FieldFailure): void {
  const r = header.resume;
  if (!r) fail({ reason: 'mismatch', field: 'header.resumed', value: 0, allowed: `1: the receive is resuming at offset ${state.position.offset}, so the stream must be sent with its resume token` });
  checkIdentity(state.header, header, 'header', "the interrupted stream's", fail);
  const p = state.position;
  const pairs: [string, number, number][] = [
    ['startOffset', r!.offset, p.offset],
    ['startSeq', r!.seq, p.seq],
    ['prefixDataBytes', r!.dataBytes, p.dataBytes],
    ['prefixZeroBytes', r!.zeroBytes, p.zeroBytes],
  ];
  for (const [field, got, want] of pairs) if (got !== want) fail({ reason: 'mismatch', field: `header.${field}`, value: got, allowed: `${want} (where the interrupted receive stopped)` });
  if (!r!.digest.equals(p.digest)) fail({ reason: 'mismatch', field: 'header.prefixDigest', value: r!.digest.toString('hex'), allowed: `${p.digest.toString('hex')} (the digest of what was received)` });
}

function checkIdentity(want: SendStreamHeader, got: SendStreamHeader, prefix: string, whose: string, fail: FieldFailure): void {
  const pairs: [string, unknown, unknown][] = [
    ['kind', got.kind, want.kind],
    ['snapshotGuid', got.snapshotGuid, want.snapshotGuid],
    ['baseGuid', got.baseGuid ?? 'none', want.baseGuid ?? 'none'],
    ['volumeSize', got.volumeSize, want.volumeSize],
    ['blockSize', got.blockSize, want.blockSize],
  ];
  for (const [field, g, w] of pairs) if (g !== w) fail({ reason: 'mismatch', field: `${prefix}.${field}`, value: g, allowed: `${String(w)} (${whose})` });
}

function tokenFailure(what: string): FieldFailure {
  return (facts: Omit<StreamErrorFacts, 'seq' | 'streamOffset'>) => {
    throw streamError(what, { ...facts, field: facts.field.replace(/^header\./, 'resumeToken.') });
  };
}

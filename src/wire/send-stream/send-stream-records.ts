/**
 * Byte layouts of the send stream's preamble, record head, HEADER and END payloads (format
 * version 1, docs/store-format.md), and the checks on their fields. Used by both the encoder
 * (which refuses to write what the decoder would refuse to read) and the decoder.
 */
import type { Crc32c } from '../checksum/crc32c.js';
import {
  DIGEST_LENGTH,
  END_PAYLOAD_LENGTH,
  HEADER_FIXED_LENGTH,
  HEADER_FLAG_RESUMED,
  INITIAL_DIGEST,
  isGuid,
  isStreamName,
  MAX_NAME_LENGTH,
  NAME_ALLOWED,
  PREAMBLE_LENGTH,
  readGuid,
  readU64,
  RECORD_HEAD_LENGTH,
  SEND_STREAM_MAGIC,
  SEND_STREAM_VERSION,
  STREAM_BLOCK_SIZE,
  StreamKindCode,
  writeGuid,
  writeU64,
  type SendStreamHeader,
  type SendStreamTotals,
  type StreamErrorFacts,
  type StreamPosition,
} from './send-stream-format.js';

/** Raises the error for one bad field; the caller adds where it is (record, stream byte). */
export type FieldFailure = (facts: Omit<StreamErrorFacts, 'seq' | 'streamOffset'>) => never;

/** The 16-byte preamble: magic, version, reserved 0, CRC32C of bytes 0-11. */
export function encodePreamble(crc: Crc32c): Buffer {
  const b = Buffer.alloc(PREAMBLE_LENGTH);
  SEND_STREAM_MAGIC.copy(b, 0);
  b.writeUInt16BE(SEND_STREAM_VERSION, 8);
  b.writeUInt32BE(crc.of(b.subarray(0, 12)), 12);
  return b;
}

/** Checks a preamble (exactly PREAMBLE_LENGTH bytes): magic first, then version, then checksum. */
export function checkPreamble(b: Buffer, crc: Crc32c, fail: FieldFailure): void {
  if (!b.subarray(0, 8).equals(SEND_STREAM_MAGIC)) {
    fail({ reason: 'corrupt', field: 'preamble.magic', value: b.subarray(0, 8).toString('hex'), allowed: `${SEND_STREAM_MAGIC.toString('hex')} (not a diskless send stream)` });
  }
  const version = b.readUInt16BE(8);
  const sum = crc.of(b.subarray(0, 12));
  if (b.readUInt32BE(12) !== sum) fail({ reason: 'corrupt', field: 'preamble.crc', value: hex32(b.readUInt32BE(12)), allowed: hex32(sum) });
  if (version !== SEND_STREAM_VERSION) fail({ reason: 'unsupported', field: 'preamble.version', value: version, allowed: String(SEND_STREAM_VERSION) });
  if (b.readUInt16BE(10) !== 0) fail({ reason: 'corrupt', field: 'preamble.reserved', value: b.readUInt16BE(10), allowed: '0' });
}

/** A record head: type, flags 0, payload length, sequence number, payload CRC32C, head CRC32C. */
export function encodeHead(type: number, seq: number, payloadLength: number, payloadCrc: number, crc: Crc32c): Buffer {
  const h = Buffer.alloc(RECORD_HEAD_LENGTH);
  h.writeUInt16BE(type, 0);
  h.writeUInt32BE(payloadLength, 4);
  writeU64(h, seq, 8);
  h.writeUInt32BE(payloadCrc, 16);
  h.writeUInt32BE(crc.of(h.subarray(0, 20)), 20);
  return h;
}

/** Eight hex digits, for checksums in messages. */
export function hex32(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

/** True when `n` is a safe non-negative integer. */
function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * Checks every field of a header against the format's rules (the encoder before writing, the
 * decoder after parsing), so both sides agree on what a valid header is.
 */
export function checkHeader(h: SendStreamHeader, fail: FieldFailure): void {
  if (h.kind !== 'full' && h.kind !== 'incremental') fail({ reason: 'corrupt', field: 'header.kind', value: h.kind, allowed: 'full or incremental' });
  if (h.blockSize !== 512 && h.blockSize !== 4096) fail({ reason: 'corrupt', field: 'header.blockSize', value: h.blockSize, allowed: '512 or 4096' });
  if (!isCount(h.volumeSize) || h.volumeSize === 0 || h.volumeSize % h.blockSize !== 0) {
    fail({ reason: 'corrupt', field: 'header.volumeSize', value: h.volumeSize, allowed: `a positive multiple of the block size ${h.blockSize} up to 2^53-1` });
  }
  if (!isGuid(h.snapshotGuid)) fail({ reason: 'corrupt', field: 'header.snapshotGuid', value: h.snapshotGuid, allowed: 'a u64 other than 0 as 16 lowercase hex digits' });
  if (h.kind === 'full' && h.baseGuid !== undefined) fail({ reason: 'corrupt', field: 'header.baseGuid', value: h.baseGuid, allowed: 'absent (0) in a full stream' });
  if (h.kind === 'incremental') {
    if (h.baseGuid === undefined || !isGuid(h.baseGuid)) fail({ reason: 'corrupt', field: 'header.baseGuid', value: h.baseGuid ?? '0000000000000000', allowed: 'a u64 other than 0 as 16 lowercase hex digits in an incremental stream' });
    if (h.baseGuid === h.snapshotGuid) fail({ reason: 'corrupt', field: 'header.baseGuid', value: h.baseGuid, allowed: 'a guid other than the snapshot guid' });
  }
  if (!isCount(h.createdAt)) fail({ reason: 'corrupt', field: 'header.createdAt', value: h.createdAt, allowed: 'milliseconds since the epoch, 0 to 2^53-1' });
  if (!isStreamName(h.volume)) fail({ reason: 'corrupt', field: 'header.volume', value: h.volume, allowed: NAME_ALLOWED });
  if (!isStreamName(h.snapshot)) fail({ reason: 'corrupt', field: 'header.snapshot', value: h.snapshot, allowed: NAME_ALLOWED });
  if (h.resume) checkPosition(h.resume, h.volumeSize, 'header.resume', fail);
}

/**
 * Checks a position's internal consistency: offset aligned and inside the volume, totals no
 * larger than the offset, at least one covered byte per record.
 */
export function checkPosition(p: StreamPosition, volumeSize: number, prefix: string, fail: FieldFailure): void {
  if (!isCount(p.offset) || p.offset > volumeSize || (p.offset % STREAM_BLOCK_SIZE !== 0 && p.offset !== volumeSize)) {
    fail({ reason: 'corrupt', field: `${prefix}.offset`, value: p.offset, allowed: `a multiple of ${STREAM_BLOCK_SIZE} or the volume size, at most ${volumeSize}` });
  }
  if (!isCount(p.dataBytes) || !isCount(p.zeroBytes) || p.dataBytes + p.zeroBytes > p.offset) {
    fail({ reason: 'corrupt', field: `${prefix}.dataBytes+zeroBytes`, value: p.dataBytes + p.zeroBytes, allowed: `at most the offset ${p.offset}` });
  }
  if (!isCount(p.seq) || p.seq < 1 || p.seq - 1 > p.dataBytes + p.zeroBytes) {
    fail({ reason: 'corrupt', field: `${prefix}.seq`, value: p.seq, allowed: `1 to ${p.dataBytes + p.zeroBytes + 1} (each record covers at least one byte)` });
  }
  if (p.digest.length !== DIGEST_LENGTH) fail({ reason: 'corrupt', field: `${prefix}.digest`, value: `${p.digest.length} bytes`, allowed: `${DIGEST_LENGTH} bytes` });
}

/** Encodes a checked header as the HEADER payload. */
export function encodeHeaderPayload(h: SendStreamHeader): Buffer {
  const vol = Buffer.from(h.volume, 'latin1');
  const snap = Buffer.from(h.snapshot, 'latin1');
  const b = Buffer.alloc(HEADER_FIXED_LENGTH + 1 + vol.length + 1 + snap.length);
  b[0] = StreamKindCode[h.kind];
  b[1] = h.resume ? HEADER_FLAG_RESUMED : 0;
  b.writeUInt32BE(h.blockSize, 4);
  writeU64(b, h.volumeSize, 8);
  writeGuid(b, h.snapshotGuid, 16);
  writeGuid(b, h.baseGuid, 24);
  writeU64(b, h.createdAt, 32);
  const r = h.resume;
  writeU64(b, r?.offset ?? 0, 40);
  writeU64(b, r?.seq ?? 1, 48);
  writeU64(b, r?.dataBytes ?? 0, 56);
  writeU64(b, r?.zeroBytes ?? 0, 64);
  (r?.digest ?? INITIAL_DIGEST).copy(b, 72);
  b[HEADER_FIXED_LENGTH] = vol.length;
  vol.copy(b, HEADER_FIXED_LENGTH + 1);
  b[HEADER_FIXED_LENGTH + 1 + vol.length] = snap.length;
  snap.copy(b, HEADER_FIXED_LENGTH + 2 + vol.length);
  return b;
}

/** Most bytes a HEADER payload can have. */
export const MAX_HEADER_PAYLOAD = HEADER_FIXED_LENGTH + 2 + 2 * MAX_NAME_LENGTH;

/** Parses and checks a HEADER payload (its CRC already verified). */
export function decodeHeaderPayload(b: Buffer, fail: FieldFailure): SendStreamHeader {
  if (b.length < HEADER_FIXED_LENGTH + 4) fail({ reason: 'corrupt', field: 'header.length', value: b.length, allowed: `${HEADER_FIXED_LENGTH + 4} to ${MAX_HEADER_PAYLOAD}` });
  const kindCode = b[0]!;
  const kind = kindCode === StreamKindCode.full ? 'full' : kindCode === StreamKindCode.incremental ? 'incremental' : undefined;
  if (!kind) fail({ reason: 'corrupt', field: 'header.kind', value: kindCode, allowed: `${StreamKindCode.full} (full) or ${StreamKindCode.incremental} (incremental)` });
  const flags = b[1]!;
  if (flags & ~HEADER_FLAG_RESUMED) fail({ reason: 'corrupt', field: 'header.flags', value: flags, allowed: `0 or ${HEADER_FLAG_RESUMED} (resumed)` });
  if (b.readUInt16BE(2) !== 0) fail({ reason: 'corrupt', field: 'header.reserved', value: b.readUInt16BE(2), allowed: '0' });
  const u64 = (off: number, field: string): number => readU64(b, off) ?? fail({ reason: 'corrupt', field, value: b.readBigUInt64BE(off).toString(), allowed: 'at most 2^53-1' });
  const blockSize = b.readUInt32BE(4);
  const volumeSize = u64(8, 'header.volumeSize');
  const snapshotGuid = readGuid(b, 16);
  const baseGuid = readGuid(b, 24);
  const createdAt = u64(32, 'header.createdAt');
  const position: StreamPosition = {
    offset: u64(40, 'header.startOffset'),
    seq: u64(48, 'header.startSeq'),
    dataBytes: u64(56, 'header.prefixDataBytes'),
    zeroBytes: u64(64, 'header.prefixZeroBytes'),
    digest: Buffer.from(b.subarray(72, 72 + DIGEST_LENGTH)),
  };
  const volLen = b[HEADER_FIXED_LENGTH]!;
  const snapAt = HEADER_FIXED_LENGTH + 1 + volLen;
  if (snapAt >= b.length) fail({ reason: 'corrupt', field: 'header.volumeNameLength', value: volLen, allowed: `at most ${b.length - HEADER_FIXED_LENGTH - 3} (the payload is ${b.length} bytes)` });
  const snapLen = b[snapAt]!;
  if (snapAt + 1 + snapLen !== b.length) fail({ reason: 'corrupt', field: 'header.snapshotNameLength', value: snapLen, allowed: `${b.length - snapAt - 1} (the rest of the ${b.length}-byte payload)` });
  const resumed = (flags & HEADER_FLAG_RESUMED) !== 0;
  if (!resumed) {
    // a fresh stream states the start position explicitly, so a flipped flag bit cannot pass
    if (position.offset !== 0 || position.seq !== 1 || position.dataBytes !== 0 || position.zeroBytes !== 0 || !position.digest.equals(INITIAL_DIGEST)) {
      fail({ reason: 'corrupt', field: 'header.startOffset/startSeq/prefix', value: `${position.offset}/${position.seq}/${position.dataBytes}+${position.zeroBytes}`, allowed: '0/1/0+0 and a zero digest unless the resumed flag is set' });
    }
  }
  const header: SendStreamHeader = {
    kind: kind!,
    blockSize: blockSize as 512 | 4096,
    volumeSize,
    snapshotGuid: snapshotGuid ?? '0000000000000000',
    baseGuid,
    createdAt,
    volume: b.toString('latin1', HEADER_FIXED_LENGTH + 1, snapAt),
    snapshot: b.toString('latin1', snapAt + 1),
    resume: resumed ? position : undefined,
  };
  checkHeader(header, fail);
  return header;
}

/** The END payload: records u64, data bytes u64, zero bytes u64, reserved u64 (0), digest. */
export function encodeEndPayload(t: SendStreamTotals): Buffer {
  const b = Buffer.alloc(END_PAYLOAD_LENGTH);
  writeU64(b, t.records, 0);
  writeU64(b, t.dataBytes, 8);
  writeU64(b, t.zeroBytes, 16);
  t.digest.copy(b, 32);
  return b;
}

/** Parses an END payload (length already checked); the decoder compares it with what it counted. */
export function decodeEndPayload(b: Buffer, fail: FieldFailure): SendStreamTotals {
  const u64 = (off: number, field: string): number => readU64(b, off) ?? fail({ reason: 'corrupt', field, value: b.readBigUInt64BE(off).toString(), allowed: 'at most 2^53-1' });
  const records = u64(0, 'end.records');
  const dataBytes = u64(8, 'end.dataBytes');
  const zeroBytes = u64(16, 'end.zeroBytes');
  if (b.readBigUInt64BE(24) !== 0n) fail({ reason: 'corrupt', field: 'end.reserved', value: b.readBigUInt64BE(24).toString(), allowed: '0' });
  return { records, dataBytes, zeroBytes, digest: Buffer.from(b.subarray(32, 32 + DIGEST_LENGTH)) };
}

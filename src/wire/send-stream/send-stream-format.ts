/**
 * The embedded driver's send stream, format version 1: constants, the typed records, and the
 * byte layouts shared by `SendStreamEncoder` and `SendStreamDecoder`. docs/store-format.md
 * ("Send stream format (version 1)") is the written spec; every number here is named there.
 *
 * A stream is a 16-byte preamble, then records. Each record is a 24-byte head (type, flags,
 * payload length, sequence number, payload CRC32C, head CRC32C) and its payload. Integers are
 * unsigned big-endian; checksums are CRC32C values stored big-endian.
 */
import { createHash } from 'node:crypto';
import { DisklessError } from '../../errors/index.js';

/** First 8 bytes of every stream: 0x89 "DLSEND" LF (the high byte and LF catch 7-bit and text-mode mangling, as PNG's do). */
export const SEND_STREAM_MAGIC: Buffer = Buffer.from([0x89, 0x44, 0x4c, 0x53, 0x45, 0x4e, 0x44, 0x0a]);
/** The format version this code writes and the only one it reads. */
export const SEND_STREAM_VERSION = 1;
/** magic (8) + version u16 + reserved u16 + CRC32C of the first 12 bytes u32. */
export const PREAMBLE_LENGTH = 16;
/** type u16, flags u16, payload length u32, sequence u64, payload CRC32C u32, head CRC32C u32. */
export const RECORD_HEAD_LENGTH = 24;
/** Offsets and lengths of DATA and ZERO records are multiples of this (or end at the volume's end). */
export const STREAM_BLOCK_SIZE = 4096;
/** Most data bytes one DATA record carries: the decoder never buffers more than one record. */
export const MAX_DATA_LENGTH = 1024 * 1024;
/** Length of the whole-stream digest (SHA-256 chain over record heads). */
export const DIGEST_LENGTH = 32;
/** Longest volume or snapshot name in a header or token, in bytes. */
export const MAX_NAME_LENGTH = 255;
/** Fixed part of the HEADER payload, before the two names. */
export const HEADER_FIXED_LENGTH = 104;
/** Payload lengths of the fixed-size records. */
export const ZERO_PAYLOAD_LENGTH = 16;
export const END_PAYLOAD_LENGTH = 64;
/** Offset field in front of a DATA record's bytes. */
export const DATA_OFFSET_LENGTH = 8;

/** Record type codes (head bytes 0-1). */
export const RecordType = {
  header: 1,
  data: 2,
  zero: 3,
  end: 4,
} as const;
export type RecordTypeName = keyof typeof RecordType;

/** HEADER byte 0. */
export const StreamKindCode = { full: 1, incremental: 2 } as const;
/** HEADER byte 1, bit 0: the stream continues an interrupted one (`send --resume`). */
export const HEADER_FLAG_RESUMED = 0x01;

export type StreamKind = keyof typeof StreamKindCode;

/**
 * Where a stream stands after a record: what the next record must continue from. Carried by
 * every decoded event, stated by a resumed stream's header, and stored in a resume token.
 */
export interface StreamPosition {
  /** Sequence number the next DATA/ZERO/END record carries (the HEADER is 0, so 1 at the start). */
  readonly seq: number;
  /** Volume offset the next DATA/ZERO record may start at (end of the last one). */
  readonly offset: number;
  /** DATA bytes so far (the payloads' data, not counting heads or offset fields). */
  readonly dataBytes: number;
  /** Bytes covered by ZERO records so far. */
  readonly zeroBytes: number;
  /** The SHA-256 chain value after the last record (32 bytes). */
  readonly digest: Buffer;
}

/** The decoded HEADER: what the stream carries and, when resumed, where it starts. */
export interface SendStreamHeader {
  readonly kind: StreamKind;
  /** Logical block size of the volume: 512 or 4096. */
  readonly blockSize: 512 | 4096;
  /** Volume capacity in bytes, a multiple of `blockSize`. */
  readonly volumeSize: number;
  /** The sent snapshot's guid: a non-zero u64 as 16 lowercase hex digits (SnapshotInfo.guid of the embedded driver). */
  readonly snapshotGuid: string;
  /** The base snapshot's guid for an incremental stream, undefined for a full one. */
  readonly baseGuid: string | undefined;
  /** The snapshot's creation time, milliseconds since the epoch. */
  readonly createdAt: number;
  /** Name of the volume it was sent from (informative: the receiver picks its own). */
  readonly volume: string;
  /** Name of the snapshot; the receiver creates a snapshot of this name. */
  readonly snapshot: string;
  /** Present on a resumed stream: the position it continues from (offset, seq, totals, digest). */
  readonly resume: StreamPosition | undefined;
}

/** Totals an END record states (and the decoder checked) for the whole logical stream. */
export interface SendStreamTotals {
  /** DATA and ZERO records in the whole stream, counting those before a resume. */
  readonly records: number;
  readonly dataBytes: number;
  readonly zeroBytes: number;
  /** The SHA-256 chain value over every record head from the HEADER to the last record. */
  readonly digest: Buffer;
}

/** Why a stream was refused; in `DisklessError.data.reason` of STORE_STREAM_INVALID. */
export type StreamRejection = 'corrupt' | 'truncated' | 'mismatch' | 'unsupported';

/** Facts behind a rejection: the field, its value, what is allowed, and where. */
export interface StreamErrorFacts {
  readonly reason: StreamRejection;
  readonly field: string;
  readonly value: unknown;
  readonly allowed: string;
  /** Sequence number of the record at fault, when known. */
  readonly seq?: number;
  /** Byte offset in this stream of the record (or preamble) at fault. */
  readonly streamOffset?: number;
}

/** The STORE_STREAM_INVALID error every codec function throws: "cannot <what>: <field> is <value>, allowed: <allowed>". */
export function streamError(what: string, facts: StreamErrorFacts): DisklessError {
  const where = facts.seq !== undefined ? ` (record ${facts.seq}${facts.streamOffset !== undefined ? ` at stream byte ${facts.streamOffset}` : ''})` : facts.streamOffset !== undefined ? ` (stream byte ${facts.streamOffset})` : '';
  // names are quoted so an empty or odd one shows; hex and descriptions read better bare
  const value = typeof facts.value === 'string' && /(volume|snapshot|kind)$/.test(facts.field) ? JSON.stringify(facts.value) : String(facts.value);
  return new DisklessError('STORE_STREAM_INVALID', `cannot ${what}${where}: ${facts.field} is ${value}, allowed: ${facts.allowed}`, { ...facts });
}

/** The chain value before the HEADER: 32 zero bytes. */
export const INITIAL_DIGEST: Buffer = Buffer.alloc(DIGEST_LENGTH);

/** One step of the whole-stream digest: SHA-256(previous chain value ‖ record head). */
export function chainDigest(previous: Buffer, head: Buffer): Buffer {
  return createHash('sha256').update(previous).update(head).digest();
}

const MAX_SAFE_HIGH = Math.floor(Number.MAX_SAFE_INTEGER / 2 ** 32);

/** Writes a non-negative safe integer as a big-endian u64. */
export function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / 2 ** 32), offset);
  buf.writeUInt32BE(value % 2 ** 32, offset + 4);
}

/** Reads a big-endian u64 as a number; undefined when it exceeds Number.MAX_SAFE_INTEGER. */
export function readU64(buf: Buffer, offset: number): number | undefined {
  const hi = buf.readUInt32BE(offset);
  if (hi > MAX_SAFE_HIGH) return undefined;
  return hi * 2 ** 32 + buf.readUInt32BE(offset + 4);
}

const GUID_RE = /^[0-9a-f]{16}$/;
const ZERO_GUID = '0000000000000000';

/** True when `guid` is a u64 other than 0 as 16 lowercase hex digits (the embedded pool's form). */
export function isGuid(guid: string): boolean {
  return typeof guid === 'string' && GUID_RE.test(guid) && guid !== ZERO_GUID;
}

/** Writes a guid (16 hex digits) as 8 bytes; undefined (absent base) as 0. */
export function writeGuid(buf: Buffer, guid: string | undefined, offset: number): void {
  buf.write(guid ?? ZERO_GUID, offset, 8, 'hex');
}

/** Reads an 8-byte guid as 16 hex digits, or undefined when it is 0. */
export function readGuid(buf: Buffer, offset: number): string | undefined {
  const g = buf.toString('hex', offset, offset + 8);
  return g === ZERO_GUID ? undefined : g;
}

const NAME_RE = /^[A-Za-z0-9._-]+$/;

/** True when `name` may appear in a header or token: 1-255 of letters, digits, . _ - */
export function isStreamName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** What `isStreamName` allows, for error messages. */
export const NAME_ALLOWED = `1-${MAX_NAME_LENGTH} letters, digits, . _ -`;

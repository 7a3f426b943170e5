/**
 * Reads a send stream (format version 1, docs/store-format.md) incrementally. The embedded
 * driver's `receive` feeds it the stream's chunks as they come, whatever their boundaries, and
 * applies the events it returns; nothing is yielded before its record's checksums pass, and a
 * stream is good only once `finish()` returns (END seen and matching). Memory is bounded: at
 * most one record (1 MiB of data plus its head) is held between chunks.
 *
 * States: preamble → head → payload → head → … → done. Any error moves to `failed`; every
 * error is a STORE_STREAM_INVALID whose data says the reason (corrupt, mismatch, unsupported,
 * or truncated from `finish()`), the field, its value, what is allowed, and where.
 */
import { Crc32c } from '../checksum/crc32c.js';
import { checkContinuation, type ResumeState } from './resume-token.js';
import { checkPreamble, decodeEndPayload, decodeHeaderPayload, hex32, MAX_HEADER_PAYLOAD, type FieldFailure } from './send-stream-records.js';
import {
  chainDigest,
  DATA_OFFSET_LENGTH,
  END_PAYLOAD_LENGTH,
  HEADER_FIXED_LENGTH,
  INITIAL_DIGEST,
  MAX_DATA_LENGTH,
  PREAMBLE_LENGTH,
  readU64,
  RECORD_HEAD_LENGTH,
  RecordType,
  STREAM_BLOCK_SIZE,
  streamError,
  ZERO_PAYLOAD_LENGTH,
  type SendStreamHeader,
  type SendStreamTotals,
  type StreamErrorFacts,
  type StreamPosition,
} from './send-stream-format.js';

/**
 * What the decoder yields, in stream order. `position` is where the stream stands after the
 * record (what a resume token made now would continue from); `bytes` counts stream bytes
 * consumed through the record, plus the token's count when resuming (for progress only).
 */
export type SendStreamEvent =
  /** The HEADER; `position` is where records start (a resume token can be made from it). */
  | { readonly type: 'header'; readonly header: SendStreamHeader; readonly position: StreamPosition; readonly bytes: number }
  /** Bytes to write at `offset`; `data` may be a view of the pushed chunk. */
  | { readonly type: 'data'; readonly offset: number; readonly data: Buffer; readonly position: StreamPosition; readonly bytes: number }
  /** `length` bytes at `offset` read as zeros. */
  | { readonly type: 'zero'; readonly offset: number; readonly length: number; readonly position: StreamPosition; readonly bytes: number }
  /** The END record matched what was counted: the stream is whole (still call `finish()`). */
  | { readonly type: 'end'; readonly totals: SendStreamTotals };

export interface SendStreamDecoderOptions {
  /**
   * The state of the interrupted receive this stream resumes (decoded from the token the
   * receiver handed out, or kept by the receiver). Without it a resumed stream is refused;
   * with it, the stream must be a resumed one continuing exactly there.
   */
  readonly resume?: ResumeState;
  /** The CRC32C function (pass one with the hardware update for speed); a table one by default. */
  readonly crc?: Crc32c;
}

export type SendStreamDecoderState = 'preamble' | 'head' | 'payload' | 'done' | 'failed';

/** Incremental decoder for one stream. Not reusable: make one per receive. */
export class SendStreamDecoder {
  private st: SendStreamDecoderState = 'preamble';
  /** Bytes of the current piece gathered across chunks, or null while none is pending. */
  private piece: Buffer | null = null;
  private have = 0;
  private need = PREAMBLE_LENGTH;
  /** Bytes of this stream consumed before the current piece (for messages). */
  private streamOffset = 0;
  /** Stream offset where the current record starts. */
  private recordAt = 0;
  private head: Buffer = Buffer.alloc(RECORD_HEAD_LENGTH);
  private type = 0;
  private recordSeq = 0;
  private payloadCrc = 0;
  private hdr: SendStreamHeader | undefined;
  private seq = 0;
  private offset = 0;
  private dataBytes = 0;
  private zeroBytes = 0;
  private digest: Buffer = INITIAL_DIGEST;
  private bytes: number;
  private error: Error | undefined;
  private readonly resume: ResumeState | undefined;
  private readonly crc: Crc32c;

  constructor(options: SendStreamDecoderOptions = {}) {
    this.resume = options.resume;
    this.crc = options.crc ?? new Crc32c();
    this.bytes = options.resume?.bytes ?? 0;
  }

  /** The part of the stream the next byte belongs to. */
  get state(): SendStreamDecoderState {
    return this.st;
  }

  /** True once the END record was read and matched. */
  get complete(): boolean {
    return this.st === 'done';
  }

  /** The stream's header, once read. */
  get header(): SendStreamHeader | undefined {
    return this.hdr;
  }

  /** Bytes of an incomplete preamble, head or payload held between chunks (at most 8 + 1 MiB). */
  get buffered(): number {
    return this.have;
  }

  /** Bytes of this stream consumed so far. */
  get consumed(): number {
    return this.streamOffset + this.have;
  }

  /**
   * Consumes `chunk` and returns the events of the records it completed, in order. Throws
   * STORE_STREAM_INVALID at the first bad byte; after that every call throws the same error.
   */
  push(chunk: Buffer): SendStreamEvent[] {
    if (this.error) throw this.error;
    const out: SendStreamEvent[] = [];
    try {
      let off = 0;
      while (off < chunk.length) {
        if (this.st === 'done') {
          this.fail({ reason: 'corrupt', field: 'trailing bytes', value: chunk.length - off, allowed: '0 after the END record' }, this.streamOffset);
        }
        const want = this.need - this.have;
        let piece: Buffer;
        if (this.have === 0 && chunk.length - off >= want) {
          piece = chunk.subarray(off, off + want); // whole piece in this chunk: no copy
          off += want;
        } else {
          this.piece ??= Buffer.allocUnsafe(this.need);
          const n = Math.min(want, chunk.length - off);
          chunk.copy(this.piece, this.have, off, off + n);
          this.have += n;
          off += n;
          if (this.have < this.need) break;
          piece = this.piece;
        }
        const ev = this.take(piece);
        this.streamOffset += piece.length;
        this.piece = null;
        this.have = 0;
        if (ev) out.push(ev);
        this.next();
      }
    } catch (err) {
      this.st = 'failed';
      this.error = err as Error;
      throw err;
    }
    return out;
  }

  /**
   * Call when the input ends. Returns the END totals when the stream was whole; otherwise
   * throws STORE_STREAM_INVALID with reason "truncated" (the stream stopped cleanly before its
   * END record: a resumable receive turns this into STORE_RECEIVE_INTERRUPTED with a token).
   */
  finish(): SendStreamTotals {
    if (this.error) throw this.error;
    if (this.st !== 'done') {
      const at = this.st === 'preamble' ? 'preamble' : this.st === 'head' ? `head of record ${this.seq}` : `payload of record ${this.recordSeq}`;
      throw streamError('decode send stream', {
        reason: 'truncated',
        field: 'stream length',
        value: `${this.consumed} bytes, ending in the ${at}${this.have ? ` (${this.need - this.have} more bytes expected)` : ''}`,
        allowed: 'a stream that ends with its END record',
        streamOffset: this.consumed,
      });
    }
    return { records: this.seq - 1, dataBytes: this.dataBytes, zeroBytes: this.zeroBytes, digest: this.digest };
  }

  /** Moves to the piece after the one just taken. */
  private next(): void {
    if (this.st === 'preamble' || this.st === 'payload') {
      if (this.st === 'payload' && this.type === RecordType.end) {
        this.st = 'done';
        this.need = 0;
        return;
      }
      this.st = 'head';
      this.need = RECORD_HEAD_LENGTH;
      this.recordAt = this.streamOffset;
    } else if (this.st === 'head') {
      this.st = 'payload';
    }
  }

  private take(piece: Buffer): SendStreamEvent | undefined {
    this.bytes += piece.length;
    if (this.st === 'preamble') {
      checkPreamble(piece, this.crc, (f) => this.fail(f, 0));
      return undefined;
    }
    if (this.st === 'head') {
      this.takeHead(piece);
      return undefined;
    }
    return this.takePayload(piece);
  }

  private takeHead(h: Buffer): void {
    const fail: FieldFailure = (f) => this.fail(f, this.recordAt, this.seq);
    const headSum = this.crc.of(h.subarray(0, 20));
    // checked first: no length is trusted (so no truncation is reported) before its head is verified
    if (h.readUInt32BE(20) !== headSum) fail({ reason: 'corrupt', field: 'head.crc', value: hex32(h.readUInt32BE(20)), allowed: `${hex32(headSum)} (the record head is damaged)` });
    const type = h.readUInt16BE(0);
    const expected = this.hdr === undefined ? 'HEADER (1) first' : 'DATA (2), ZERO (3) or END (4) after the HEADER';
    if (this.hdr === undefined ? type !== RecordType.header : type !== RecordType.data && type !== RecordType.zero && type !== RecordType.end) {
      fail({ reason: 'corrupt', field: 'head.type', value: type, allowed: expected });
    }
    if (h.readUInt16BE(2) !== 0) fail({ reason: 'corrupt', field: 'head.flags', value: h.readUInt16BE(2), allowed: '0' });
    const seq = readU64(h, 8);
    if (seq !== this.seq) fail({ reason: 'corrupt', field: 'head.seq', value: seq ?? h.readBigUInt64BE(8).toString(), allowed: `${this.seq} (a record is missing, repeated or out of order)` });
    const length = h.readUInt32BE(4);
    const [min, max] = type === RecordType.header ? [HEADER_FIXED_LENGTH + 4, MAX_HEADER_PAYLOAD] : type === RecordType.data ? [DATA_OFFSET_LENGTH + 1, DATA_OFFSET_LENGTH + MAX_DATA_LENGTH] : type === RecordType.zero ? [ZERO_PAYLOAD_LENGTH, ZERO_PAYLOAD_LENGTH] : [END_PAYLOAD_LENGTH, END_PAYLOAD_LENGTH];
    if (length < min || length > max) fail({ reason: 'corrupt', field: 'head.length', value: length, allowed: min === max ? String(min) : `${min} to ${max}` });
    h.copy(this.head);
    this.type = type;
    this.recordSeq = seq!;
    this.payloadCrc = h.readUInt32BE(16);
    this.need = length;
  }

  private takePayload(p: Buffer): SendStreamEvent | undefined {
    const fail: FieldFailure = (f) => this.fail(f, this.recordAt, this.recordSeq);
    const sum = this.crc.of(p);
    if (sum !== this.payloadCrc) fail({ reason: 'corrupt', field: 'payload.crc', value: hex32(sum), allowed: `${hex32(this.payloadCrc)} (the head's; the payload is damaged)` });
    switch (this.type) {
      case RecordType.header:
        return this.takeHeader(p, fail);
      case RecordType.data:
      case RecordType.zero:
        return this.takeRange(p, fail);
      default:
        return this.takeEnd(p, fail);
    }
  }

  private takeHeader(p: Buffer, fail: FieldFailure): SendStreamEvent {
    const header = decodeHeaderPayload(p, fail);
    const r = header.resume;
    if (this.resume) checkContinuation(this.resume, header, fail);
    else if (r) fail({ reason: 'mismatch', field: 'header.resumed', value: 1, allowed: `0: this stream resumes at offset ${r.offset}, which needs the receiver's saved resume state` });
    this.hdr = header;
    if (r) {
      this.seq = r.seq;
      this.offset = r.offset;
      this.dataBytes = r.dataBytes;
      this.zeroBytes = r.zeroBytes;
      this.digest = Buffer.from(r.digest);
    } else {
      this.seq = 1;
      this.digest = chainDigest(INITIAL_DIGEST, this.head);
    }
    return { type: 'header', header, position: this.position(), bytes: this.bytes };
  }

  private takeRange(p: Buffer, fail: FieldFailure): SendStreamEvent {
    const isData = this.type === RecordType.data;
    const name = isData ? 'data' : 'zero';
    const size = this.hdr!.volumeSize;
    const offset = readU64(p, 0);
    const length = isData ? p.length - DATA_OFFSET_LENGTH : readU64(p, 8);
    if (offset === undefined || offset % STREAM_BLOCK_SIZE !== 0 || offset < this.offset || offset >= size) {
      fail({ reason: 'corrupt', field: `${name}.offset`, value: offset ?? p.readBigUInt64BE(0).toString(), allowed: `a multiple of ${STREAM_BLOCK_SIZE} from ${this.offset} (the end of the previous record) to below the volume size ${size}` });
    }
    if (length === undefined || length === 0 || offset! + length > size || (length % STREAM_BLOCK_SIZE !== 0 && offset! + length !== size)) {
      fail({ reason: 'corrupt', field: `${name}.length`, value: length ?? p.readBigUInt64BE(8).toString(), allowed: `a positive multiple of ${STREAM_BLOCK_SIZE}, or reaching exactly the volume size ${size}, ending at most at ${size}` });
    }
    this.digest = chainDigest(this.digest, this.head);
    this.seq++;
    this.offset = offset! + length!;
    if (isData) {
      this.dataBytes += length!;
      // a piece gathered across chunks is ours; a view of the caller's chunk stays a view
      return { type: 'data', offset: offset!, data: p.subarray(DATA_OFFSET_LENGTH), position: this.position(), bytes: this.bytes };
    }
    this.zeroBytes += length!;
    return { type: 'zero', offset: offset!, length: length!, position: this.position(), bytes: this.bytes };
  }

  private takeEnd(p: Buffer, fail: FieldFailure): SendStreamEvent {
    const t = decodeEndPayload(p, fail);
    const counted: [keyof SendStreamTotals, number, number][] = [
      ['records', t.records, this.seq - 1],
      ['dataBytes', t.dataBytes, this.dataBytes],
      ['zeroBytes', t.zeroBytes, this.zeroBytes],
    ];
    for (const [field, stated, seen] of counted) if (stated !== seen) fail({ reason: 'corrupt', field: `end.${field}`, value: stated, allowed: `${seen} (what the stream carried)` });
    if (!t.digest.equals(this.digest)) fail({ reason: 'corrupt', field: 'end.digest', value: t.digest.toString('hex'), allowed: `${this.digest.toString('hex')} (records were dropped, reordered or spliced)` });
    return { type: 'end', totals: t };
  }

  private position(): StreamPosition {
    return { seq: this.seq, offset: this.offset, dataBytes: this.dataBytes, zeroBytes: this.zeroBytes, digest: this.digest };
  }

  private fail(facts: Omit<StreamErrorFacts, 'seq' | 'streamOffset'>, streamOffset: number, seq?: number): never {
    throw streamError('decode send stream', { ...facts, ...(seq !== undefined ? { seq } : {}), streamOffset });
  }
}

/** Decodes a whole stream held in one buffer (tests, small streams): every event, END last. */
export function decodeSendStream(bytes: Buffer, options: SendStreamDecoderOptions = {}): SendStreamEvent[] {
  const d = new SendStreamDecoder(options);
  const events = d.push(bytes);
  d.finish();
  return events;
}

/**
 * Decodes an async byte stream (a socket, a file, `driver.send(...)`), yielding each event
 * as soon as its record is verified, except the `end` event: that one comes only after the
 * source has ended with nothing after the END record, so a consumer that stops at `end` has
 * still had the whole stream checked. Throws as the decoder does; a stream that ends before
 * its END record throws the "truncated" error after yielding everything before it.
 */
export async function* readSendStream(source: AsyncIterable<Buffer>, options: SendStreamDecoderOptions = {}): AsyncGenerator<SendStreamEvent, SendStreamTotals> {
  const d = new SendStreamDecoder(options);
  let end: SendStreamEvent | undefined;
  for await (const chunk of source) {
    for (const ev of d.push(chunk)) {
      if (ev.type === 'end') end = ev;
      else yield ev;
    }
  }
  const totals = d.finish();
  if (end) yield end;
  return totals;
}

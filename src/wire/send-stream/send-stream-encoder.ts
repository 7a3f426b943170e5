/**
 * Writes a send stream (format version 1, docs/store-format.md). The embedded driver's `send`
 * makes one `SendStreamEncoder` per stream and yields what its methods return, in order:
 * `start()`, then `data`/`zero` for each changed range in increasing offset order, then `end()`.
 * The encoder keeps the sequence numbers, totals and whole-stream digest, and refuses (with
 * STORE_STREAM_INVALID, nothing written) any call that would make a stream the decoder rejects.
 */
import { Crc32c } from '../checksum/crc32c.js';
import { checkHeader, encodeEndPayload, encodeHead, encodeHeaderPayload, encodePreamble, type FieldFailure } from './send-stream-records.js';
import {
  chainDigest,
  DATA_OFFSET_LENGTH,
  INITIAL_DIGEST,
  MAX_DATA_LENGTH,
  RECORD_HEAD_LENGTH,
  RecordType,
  STREAM_BLOCK_SIZE,
  streamError,
  writeU64,
  ZERO_PAYLOAD_LENGTH,
  type SendStreamHeader,
  type SendStreamTotals,
  type StreamPosition,
} from './send-stream-format.js';

export interface SendStreamEncoderOptions {
  /** The CRC32C function (pass one with the hardware update for speed); a table one by default. */
  readonly crc?: Crc32c;
}

type EncoderState = 'new' | 'records' | 'ended';

const fail: FieldFailure = (facts) => {
  throw streamError('encode send stream', facts);
};

/**
 * One stream's writer. For a resumed stream pass a header whose `resume` is the position from
 * the receiver's token (see `resumedHeader` in resume-token.ts): the records then continue that
 * position's sequence numbers, totals and digest, and must start at or after its offset.
 */
export class SendStreamEncoder {
  readonly header: SendStreamHeader;
  private readonly crc: Crc32c;
  private state: EncoderState = 'new';
  private seq: number;
  private offset: number;
  private dataBytes: number;
  private zeroBytes: number;
  private digest: Buffer;

  /** Checks `header` (STORE_STREAM_INVALID naming the bad field); nothing is written yet. */
  constructor(header: SendStreamHeader, options: SendStreamEncoderOptions = {}) {
    checkHeader(header, fail);
    this.header = header;
    this.crc = options.crc ?? new Crc32c();
    const r = header.resume;
    this.seq = r?.seq ?? 1;
    this.offset = r?.offset ?? 0;
    this.dataBytes = r?.dataBytes ?? 0;
    this.zeroBytes = r?.zeroBytes ?? 0;
    this.digest = r ? Buffer.from(r.digest) : INITIAL_DIGEST;
  }

  /** Where the stream stands: after `end()`, the totals the END record stated. */
  get position(): StreamPosition {
    return { seq: this.seq, offset: this.offset, dataBytes: this.dataBytes, zeroBytes: this.zeroBytes, digest: this.digest };
  }

  /** The preamble and the HEADER record (sequence 0), as one buffer. Call once, first. */
  start(): Buffer {
    this.expect('new', 'start');
    const payload = encodeHeaderPayload(this.header);
    const head = encodeHead(RecordType.header, 0, payload.length, this.crc.of(payload), this.crc);
    // a resumed stream's HEADER restates the stream; only the original one is in the chain
    if (!this.header.resume) this.digest = chainDigest(this.digest, head);
    this.state = 'records';
    return Buffer.concat([encodePreamble(this.crc), head, payload]);
  }

  /**
   * DATA records for `bytes` at volume `offset`: split into records of at most 1 MiB, returned
   * as chunks (each record's head and offset field, then a view of `bytes`: not copied).
   * `offset` is a multiple of 4096 at or after the end of the previous record; the length is a
   * positive multiple of 4096 unless the run ends exactly at the volume's end.
   */
  data(offset: number, bytes: Buffer): Buffer[] {
    this.checkRange('data', offset, bytes.length);
    const out: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += MAX_DATA_LENGTH) {
      const piece = bytes.subarray(at, at + MAX_DATA_LENGTH);
      const lead = Buffer.alloc(RECORD_HEAD_LENGTH + DATA_OFFSET_LENGTH);
      const offsetField = lead.subarray(RECORD_HEAD_LENGTH);
      writeU64(offsetField, offset + at, 0);
      const payloadCrc = this.crc.of(offsetField, piece);
      encodeHead(RecordType.data, this.seq, DATA_OFFSET_LENGTH + piece.length, payloadCrc, this.crc).copy(lead, 0);
      this.advance(lead.subarray(0, RECORD_HEAD_LENGTH), offset + at + piece.length);
      this.dataBytes += piece.length;
      out.push(lead, piece);
    }
    return out;
  }

  /**
   * One ZERO record: `length` bytes at `offset` read as zeros (the receiver deallocates them).
   * Same alignment and ordering rules as `data`; no upper bound on the length.
   */
  zero(offset: number, length: number): Buffer {
    this.checkRange('zero', offset, length);
    const payload = Buffer.alloc(ZERO_PAYLOAD_LENGTH);
    writeU64(payload, offset, 0);
    writeU64(payload, length, 8);
    const head = encodeHead(RecordType.zero, this.seq, ZERO_PAYLOAD_LENGTH, this.crc.of(payload), this.crc);
    this.advance(head, offset + length);
    this.zeroBytes += length;
    return Buffer.concat([head, payload]);
  }

  /** The END record: totals and digest of the whole logical stream. Call once, last. */
  end(): Buffer {
    this.expect('records', 'end');
    const totals: SendStreamTotals = { records: this.seq - 1, dataBytes: this.dataBytes, zeroBytes: this.zeroBytes, digest: this.digest };
    const payload = encodeEndPayload(totals);
    const head = encodeHead(RecordType.end, this.seq, payload.length, this.crc.of(payload), this.crc);
    this.state = 'ended';
    return Buffer.concat([head, payload]);
  }

  private advance(head: Buffer, end: number): void {
    this.digest = chainDigest(this.digest, head);
    this.seq++;
    this.offset = end;
  }

  private expect(state: EncoderState, call: string): void {
    if (this.state !== state) {
      const allowed = this.state === 'new' ? 'start() first' : this.state === 'records' ? 'data(), zero() or end()' : 'nothing after end()';
      fail({ reason: 'corrupt', field: 'call', value: call, allowed });
    }
  }

  private checkRange(call: 'data' | 'zero', offset: number, length: number): void {
    this.expect('records', call);
    const size = this.header.volumeSize;
    if (!Number.isSafeInteger(offset) || offset < this.offset || offset % STREAM_BLOCK_SIZE !== 0) {
      fail({ reason: 'corrupt', field: `${call}.offset`, value: offset, allowed: `a multiple of ${STREAM_BLOCK_SIZE} at or after ${this.offset} (records go in increasing offset order)` });
    }
    if (!Number.isSafeInteger(length) || length <= 0 || offset + length > size || (length % STREAM_BLOCK_SIZE !== 0 && offset + length !== size)) {
      fail({ reason: 'corrupt', field: `${call}.length`, value: length, allowed: `a positive multiple of ${STREAM_BLOCK_SIZE} (or reaching exactly the volume size ${size}) ending at most at ${size}` });
    }
  }
}

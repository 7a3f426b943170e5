/**
 * Framing of iSCSI PDUs on a byte stream (RFC 7143 §11.2): BHS, AHS, optional header
 * digest, data segment, padding to 4 bytes, optional data digest. `encodePdu` produces the
 * chunks for one writev (the data segment is never copied); `decodePdu` reads exactly one PDU
 * from a buffer; `PduReader` is the incremental decoder a connection feeds socket chunks to.
 */
import { DisklessError } from '../../errors/index.js';
import { BHS_LENGTH, DIGEST_LENGTH, MAX_DATA_SEGMENT_LENGTH } from './iscsi-constants.js';
import { bhsAhsLength, bhsDataSegmentLength, parsePdu, type IscsiPdu, type RawPdu } from './iscsi-pdu.js';
import { encodeBhs } from './bhs-encoder.js';
import { Crc32c, readDigest, writeDigest } from '../checksum/crc32c.js';

/** Which digests the connection negotiated (HeaderDigest / DataDigest = CRC32C, §13.1). */
export interface DigestOptions {
  readonly header: boolean;
  readonly data: boolean;
}

/** No digests: the state during login and whenever None was negotiated. */
export const NO_DIGESTS: DigestOptions = { header: false, data: false };

const ZERO_PAD = Buffer.alloc(4);

/** Bytes of padding after a data segment of `length` bytes (§11.2.3: pad to a 4-byte boundary). */
export function paddingLength(length: number): number {
  return (4 - (length & 3)) & 3;
}

/**
 * The chunks of one PDU on the wire, ready for `socket.cork(); write each; uncork()`:
 * header (BHS + AHS + header digest), the data segment itself (not copied), then padding and
 * data digest. Empty chunks are left out.
 */
export function encodePdu(pdu: IscsiPdu, digests: DigestOptions = NO_DIGESTS, crc?: Crc32c): Buffer[] {
  const bhs = encodeBhs(pdu);
  const ahs = 'ahs' in pdu ? pdu.ahs : EMPTY;
  const c = digests.header || digests.data ? (crc ?? new Crc32c()) : undefined;
  const header = digests.header ? Buffer.concat([bhs, ahs, writeDigest(c!.of(bhs, ahs))]) : ahs.length ? Buffer.concat([bhs, ahs]) : bhs;
  const out = [header];
  const data = pdu.data;
  if (data.length > 0) {
    out.push(data);
    const pad = paddingLength(data.length);
    const padding = ZERO_PAD.subarray(0, pad);
    if (digests.data) out.push(Buffer.concat([padding, writeDigest(c!.of(data, padding))]));
    else if (pad) out.push(padding);
  }
  return out;
}

/** `encodePdu` as one Buffer (tests, fixtures, small PDUs). */
export function encodePduBuffer(pdu: IscsiPdu, digests: DigestOptions = NO_DIGESTS, crc?: Crc32c): Buffer {
  return Buffer.concat(encodePdu(pdu, digests, crc));
}

/**
 * Decodes a buffer holding exactly one PDU. Throws ISCSI_TRUNCATED when it is shorter than
 * the lengths in its header say, ISCSI_BAD_FIELD when bytes are left over, ISCSI_BAD_DIGEST
 * when a negotiated digest does not match, and whatever `parsePdu` throws.
 */
export function decodePdu(bytes: Buffer, digests: DigestOptions = NO_DIGESTS): IscsiPdu {
  const reader = new PduReader({ digests, maxDataSegmentLength: MAX_DATA_SEGMENT_LENGTH });
  const got = reader.push(bytes);
  if (got.length === 0) {
    throw new DisklessError('ISCSI_TRUNCATED', `cannot decode iSCSI PDU: ${bytes.length} bytes end inside the ${reader.state} (${reader.missing} more expected)`, {
      length: bytes.length,
      state: reader.state,
      missing: reader.missing,
    });
  }
  if (got.length > 1 || reader.buffered > 0) {
    throw new DisklessError('ISCSI_BAD_FIELD', `cannot decode iSCSI PDU: ${bytes.length - pduWireLength(got[0]!, digests)} bytes follow the PDU`, { length: bytes.length });
  }
  const r = got[0]!;
  if (r.dataDigestError) throw new DisklessError('ISCSI_BAD_DIGEST', 'cannot decode iSCSI PDU: data digest does not match', { field: 'DataDigest' });
  return parsePdu(r);
}

function pduWireLength(r: RawPdu, d: DigestOptions): number {
  return BHS_LENGTH + r.ahs.length + (d.header ? DIGEST_LENGTH : 0) + (r.data.length ? r.data.length + paddingLength(r.data.length) + (d.data ? DIGEST_LENGTH : 0) : 0);
}

/** A framed PDU out of the reader; `dataDigestError` set when its data digest did not match (§7.8: Reject with reason 0x02, discard). */
export interface ReceivedPdu extends RawPdu {
  readonly dataDigestError?: true;
}

/** Where the reader is inside the current PDU (iPXE's `enum iscsi_rx_state`, plus digests). */
export type PduReaderState = 'bhs' | 'ahs' | 'headerDigest' | 'data' | 'padding' | 'dataDigest';

export interface PduReaderOptions {
  digests?: DigestOptions;
  /** Longest data segment accepted: what this side declared as MaxRecvDataSegmentLength (8192 during login, §6.1). */
  maxDataSegmentLength?: number;
  /** The digest function (e.g. with the hardware update); a table one by default. */
  crc?: Crc32c;
}

/**
 * Incremental PDU decoder. Feed it socket chunks in order with `push`; it returns every PDU
 * completed by that chunk and keeps the leftover bytes. Data segments that arrive whole in
 * one chunk are returned as subarrays of it (zero copy); split ones are copied once into an
 * exact-size buffer. Errors (ISCSI_SEGMENT_TOO_LONG, ISCSI_BAD_DIGEST on a header) leave the
 * stream unsynchronised: the caller must drop the connection (§7.8).
 *
 * `digests` and `maxDataSegmentLength` may be changed between pushes: they take effect from
 * the next PDU (the login's final response switches digests on, §13.1).
 */
export class PduReader {
  digests: DigestOptions;
  maxDataSegmentLength: number;
  private st: PduReaderState = 'bhs';
  /** Bytes of the current piece gathered so far, or null while nothing is pending. */
  private piece: Buffer | null = null;
  private have = 0;
  private need = BHS_LENGTH;
  private bhs: Buffer = Buffer.alloc(0);
  private ahs: Buffer = Buffer.alloc(0);
  private data: Buffer = Buffer.alloc(0);
  private dataDigestError = false;
  private readonly crc: Crc32c;

  constructor(options: PduReaderOptions = {}) {
    this.crc = options.crc ?? new Crc32c();
    this.digests = options.digests ?? NO_DIGESTS;
    this.maxDataSegmentLength = options.maxDataSegmentLength ?? 8192;
  }

  /** The part of the PDU the next byte belongs to. */
  get state(): PduReaderState {
    return this.st;
  }

  /** Bytes still needed to complete the current part. */
  get missing(): number {
    return this.need - this.have;
  }

  /** Bytes of an incomplete PDU held. */
  get buffered(): number {
    return this.st === 'bhs' ? this.have : BHS_LENGTH + this.have;
  }

  /** Consumes `chunk`; returns the PDUs it completed, in order. */
  push(chunk: Buffer): ReceivedPdu[] {
    const out: ReceivedPdu[] = [];
    let off = 0;
    while (off < chunk.length || (this.need === 0 && this.st !== 'bhs')) {
      let part: Buffer;
      if (this.have === 0 && chunk.length - off >= this.need) {
        part = chunk.subarray(off, off + this.need); // whole piece in this chunk: no copy
        off += this.need;
      } else {
        if (this.piece === null) this.piece = Buffer.allocUnsafe(this.need);
        const n = Math.min(this.need - this.have, chunk.length - off);
        chunk.copy(this.piece, this.have, off, off + n);
        this.have += n;
        off += n;
        if (this.have < this.need) break;
        part = this.piece;
      }
      this.piece = null;
      this.have = 0;
      const pdu = this.complete(part);
      if (pdu) out.push(pdu);
    }
    return out;
  }

  /** One part is complete: store it and move to the next state. */
  private complete(part: Buffer): ReceivedPdu | null {
    switch (this.st) {
      case 'bhs': {
        this.bhs = part;
        const dsl = bhsDataSegmentLength(part);
        if (dsl > this.maxDataSegmentLength) {
          throw new DisklessError('ISCSI_SEGMENT_TOO_LONG', `cannot receive iSCSI PDU: DataSegmentLength ${dsl} exceeds MaxRecvDataSegmentLength ${this.maxDataSegmentLength}`, {
            field: 'DataSegmentLength',
            value: dsl,
            max: this.maxDataSegmentLength,
          });
        }
        this.ahs = EMPTY;
        this.data = EMPTY;
        this.dataDigestError = false;
        return this.enter(bhsAhsLength(part) > 0 ? 'ahs' : 'headerDigest');
      }
      case 'ahs':
        this.ahs = part;
        return this.enter('headerDigest');
      case 'headerDigest':
        if (this.digests.header && readDigest(part, 0) !== this.crc.of(this.bhs, this.ahs)) {
          throw new DisklessError('ISCSI_BAD_DIGEST', 'cannot receive iSCSI PDU: header digest does not match', { field: 'HeaderDigest' });
        }
        return this.enter('data');
      case 'data':
        this.data = part;
        return this.enter('padding');
      case 'padding':
        return this.enter('dataDigest');
      case 'dataDigest': {
        if (this.digests.data && this.data.length > 0) {
          const pad = ZERO_PAD.subarray(0, paddingLength(this.data.length));
          if (readDigest(part, 0) !== this.crc.of(this.data, pad)) this.dataDigestError = true;
        }
        const pdu: ReceivedPdu = this.dataDigestError ? { bhs: this.bhs, ahs: this.ahs, data: this.data, dataDigestError: true } : { bhs: this.bhs, ahs: this.ahs, data: this.data };
        this.enter('bhs');
        return pdu;
      }
    }
  }

  /** Sets the next state and how many bytes it needs; states needing none complete at once (the push loop calls `complete` again with an empty part). */
  private enter(st: PduReaderState): null {
    this.st = st;
    const dsl = bhsDataSegmentLength(this.bhs);
    switch (st) {
      case 'bhs':
        this.need = BHS_LENGTH;
        break;
      case 'ahs':
        this.need = bhsAhsLength(this.bhs);
        break;
      case 'headerDigest':
        this.need = this.digests.header ? DIGEST_LENGTH : 0;
        break;
      case 'data':
        this.need = dsl;
        break;
      case 'padding':
        this.need = paddingLength(dsl);
        break;
      case 'dataDigest':
        this.need = this.digests.data && dsl > 0 ? DIGEST_LENGTH : 0;
        break;
    }
    return null;
  }
}

const EMPTY = Buffer.alloc(0);

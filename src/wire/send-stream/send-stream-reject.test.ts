/**
 * Every rejection path of the send stream decoder (docs/store-format.md, "What a receiver
 * must reject"): each case damages a valid stream in one field (resealing the CRCs where the
 * point is to reach the field check behind them) and asserts STORE_STREAM_INVALID with the
 * reason and field in `data`, plus where (record, stream byte). Also the encoder's refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Crc32c } from '../checksum/crc32c.js';
import { SendStreamEncoder } from './send-stream-encoder.js';
import { decodeSendStream, SendStreamDecoder } from './send-stream-decoder.js';
import { HEADER_FIXED_LENGTH, MAX_DATA_LENGTH, PREAMBLE_LENGTH, RECORD_HEAD_LENGTH, RecordType, writeU64, type SendStreamHeader } from './send-stream-format.js';
import { encodeHead, encodeHeaderPayload } from './send-stream-records.js';
import { isDisklessError } from '../../errors/index.js';

const crc = new Crc32c();
const SIZE = 65536;
const base: SendStreamHeader = { kind: 'full', blockSize: 512, volumeSize: SIZE, snapshotGuid: '00000000000000a1', baseGuid: undefined, createdAt: 1, volume: 'vol', snapshot: 'snap', resume: undefined };

/** A valid stream as separate pieces: preamble, HEADER, DATA (0, 8 KiB), ZERO (8192, 4 KiB), END. */
function pieces(header: SendStreamHeader = base): Buffer[] {
  const e = new SendStreamEncoder(header);
  const start = e.start();
  return [Buffer.from(start.subarray(0, PREAMBLE_LENGTH)), Buffer.from(start.subarray(PREAMBLE_LENGTH)), Buffer.concat(e.data(0, Buffer.alloc(8192, 5))), e.zero(8192, 4096), e.end()];
}

/** Recomputes a record's payload CRC and head CRC after a deliberate edit. */
function reseal(record: Buffer): Buffer {
  record.writeUInt32BE(crc.of(record.subarray(RECORD_HEAD_LENGTH)), 16);
  record.writeUInt32BE(crc.of(record.subarray(0, 20)), 20);
  return record;
}

/** A record with correct CRCs, for cases the encoder refuses to write. */
function record(type: number, seq: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeHead(type, seq, payload.length, crc.of(payload), crc), payload]);
}

function range(offset: number, length: number): Buffer {
  const b = Buffer.alloc(16);
  writeU64(b, offset, 0);
  writeU64(b, length, 8);
  return b;
}

function dataPayload(offset: number, length: number): Buffer {
  const b = Buffer.alloc(8 + length, 1);
  writeU64(b, offset, 0);
  return b;
}

/** A stream whose HEADER payload was edited by `edit` (then resealed). */
function withHeader(edit: (payload: Buffer) => void): Buffer {
  const p = pieces();
  const payload = p[1]!.subarray(RECORD_HEAD_LENGTH);
  edit(payload);
  reseal(p[1]!);
  return Buffer.concat(p);
}

/** A stream with a HEADER payload made from `header` (valid CRCs; the encoder's checks bypassed). */
function withHeaderOf(header: SendStreamHeader, records: Buffer[] = []): Buffer {
  const p = pieces();
  return Buffer.concat([p[0]!, record(RecordType.header, 0, encodeHeaderPayload(header)), ...records]);
}

interface Case {
  readonly name: string;
  readonly bytes: () => Buffer;
  readonly reason: string;
  readonly field: string;
  /** Sequence number named in the error, when the fault is inside a record. */
  readonly seq?: number;
}

const cases: Case[] = [
  { name: 'bad magic', bytes: () => Buffer.concat(pieces()).fill(0x50, 0, 1), reason: 'corrupt', field: 'preamble.magic' },
  { name: 'not a stream at all', bytes: () => Buffer.from('hello, this is a text file, not a stream\n'), reason: 'corrupt', field: 'preamble.magic' },
  { name: 'preamble checksum', bytes: () => { const p = pieces(); p[0]![15]! ^= 1; return Buffer.concat(p); }, reason: 'corrupt', field: 'preamble.crc' },
  { name: 'version 2', bytes: () => { const p = pieces(); p[0]!.writeUInt16BE(2, 8); p[0]!.writeUInt32BE(crc.of(p[0]!.subarray(0, 12)), 12); return Buffer.concat(p); }, reason: 'unsupported', field: 'preamble.version' },
  { name: 'preamble reserved', bytes: () => { const p = pieces(); p[0]!.writeUInt16BE(1, 10); p[0]!.writeUInt32BE(crc.of(p[0]!.subarray(0, 12)), 12); return Buffer.concat(p); }, reason: 'corrupt', field: 'preamble.reserved' },
  { name: 'head checksum (a damaged length is not taken for truncation)', bytes: () => { const p = pieces(); p[2]!.writeUInt32BE(0x00ffffff, 4); return Buffer.concat(p); }, reason: 'corrupt', field: 'head.crc', seq: 1 },
  { name: 'HEADER payload checksum', bytes: () => { const p = pieces(); p[1]![RECORD_HEAD_LENGTH + 9]! ^= 0x40; return Buffer.concat(p); }, reason: 'corrupt', field: 'payload.crc', seq: 0 },
  { name: 'DATA payload checksum', bytes: () => { const p = pieces(); p[2]![RECORD_HEAD_LENGTH + 4000]! ^= 1; return Buffer.concat(p); }, reason: 'corrupt', field: 'payload.crc', seq: 1 },
  { name: 'ZERO payload checksum', bytes: () => { const p = pieces(); p[3]![RECORD_HEAD_LENGTH + 15]! ^= 1; return Buffer.concat(p); }, reason: 'corrupt', field: 'payload.crc', seq: 2 },
  { name: 'END payload checksum', bytes: () => { const p = pieces(); p[4]![RECORD_HEAD_LENGTH + 40]! ^= 1; return Buffer.concat(p); }, reason: 'corrupt', field: 'payload.crc', seq: 3 },
  { name: 'unknown record type', bytes: () => { const p = pieces(); p[3]!.writeUInt16BE(9, 0); reseal(p[3]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'head.type', seq: 2 },
  { name: 'first record is not the HEADER', bytes: () => { const p = pieces(); return Buffer.concat([p[0]!, p[2]!]); }, reason: 'corrupt', field: 'head.type', seq: 0 },
  { name: 'a second HEADER', bytes: () => { const p = pieces(); const again = Buffer.from(p[1]!); again.writeUInt32BE(1, 12); reseal(again); return Buffer.concat([p[0]!, p[1]!, again]); }, reason: 'corrupt', field: 'head.type', seq: 1 },
  { name: 'record flags', bytes: () => { const p = pieces(); p[2]!.writeUInt16BE(1, 2); reseal(p[2]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'head.flags', seq: 1 },
  { name: 'a dropped record (sequence gap)', bytes: () => { const p = pieces(); return Buffer.concat([p[0]!, p[1]!, p[3]!, p[4]!]); }, reason: 'corrupt', field: 'head.seq', seq: 1 },
  { name: 'a repeated record', bytes: () => { const p = pieces(); return Buffer.concat([p[0]!, p[1]!, p[2]!, p[2]!, p[3]!, p[4]!]); }, reason: 'corrupt', field: 'head.seq', seq: 2 },
  { name: 'two records swapped', bytes: () => { const p = pieces(); return Buffer.concat([p[0]!, p[1]!, p[3]!, p[2]!, p[4]!]); }, reason: 'corrupt', field: 'head.seq', seq: 1 },
  { name: 'a sequence number past 2^53', bytes: () => { const p = pieces(); p[2]!.writeBigUInt64BE(1n << 60n, 8); reseal(p[2]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'head.seq', seq: 1 },
  { name: 'HEADER too short', bytes: () => { const p = pieces(); p[1]!.writeUInt32BE(HEADER_FIXED_LENGTH + 3, 4); reseal(p[1]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'head.length', seq: 0 },
  { name: 'DATA longer than 1 MiB', bytes: () => { const p = pieces(); p[2]!.writeUInt32BE(8 + MAX_DATA_LENGTH + 1, 4); p[2]!.writeUInt32BE(crc.of(p[2]!.subarray(0, 20)), 20); return Buffer.concat(p); }, reason: 'corrupt', field: 'head.length', seq: 1 },
  { name: 'DATA with no bytes', bytes: () => withHeaderOf(base, [record(RecordType.data, 1, dataPayload(0, 0))]), reason: 'corrupt', field: 'head.length', seq: 1 },
  { name: 'ZERO of the wrong length', bytes: () => withHeaderOf(base, [record(RecordType.zero, 1, Buffer.alloc(24))]), reason: 'corrupt', field: 'head.length', seq: 1 },
  { name: 'END of the wrong length', bytes: () => withHeaderOf(base, [record(RecordType.end, 1, Buffer.alloc(32))]), reason: 'corrupt', field: 'head.length', seq: 1 },
  { name: 'header kind 3', bytes: () => withHeader((h) => (h[0] = 3)), reason: 'corrupt', field: 'header.kind', seq: 0 },
  { name: 'header flag bit 1', bytes: () => withHeader((h) => (h[1] = 2)), reason: 'corrupt', field: 'header.flags', seq: 0 },
  { name: 'header reserved', bytes: () => withHeader((h) => h.writeUInt16BE(7, 2)), reason: 'corrupt', field: 'header.reserved', seq: 0 },
  { name: 'block size 1024', bytes: () => withHeader((h) => h.writeUInt32BE(1024, 4)), reason: 'corrupt', field: 'header.blockSize', seq: 0 },
  { name: 'volume size 0', bytes: () => withHeader((h) => writeU64(h, 0, 8)), reason: 'corrupt', field: 'header.volumeSize', seq: 0 },
  { name: 'volume size not a multiple of the block size', bytes: () => withHeader((h) => writeU64(h, SIZE + 100, 8)), reason: 'corrupt', field: 'header.volumeSize', seq: 0 },
  { name: 'volume size past 2^53', bytes: () => withHeader((h) => h.writeBigUInt64BE(1n << 62n, 8)), reason: 'corrupt', field: 'header.volumeSize', seq: 0 },
  { name: 'snapshot guid 0', bytes: () => withHeader((h) => h.fill(0, 16, 24)), reason: 'corrupt', field: 'header.snapshotGuid', seq: 0 },
  { name: 'a full stream with a base guid', bytes: () => withHeader((h) => h.writeBigUInt64BE(5n, 24)), reason: 'corrupt', field: 'header.baseGuid', seq: 0 },
  { name: 'an incremental stream without a base guid', bytes: () => withHeader((h) => (h[0] = 2)), reason: 'corrupt', field: 'header.baseGuid', seq: 0 },
  { name: 'an incremental stream based on itself', bytes: () => withHeader((h) => { h[0] = 2; h.copy(h, 24, 16, 24); }), reason: 'corrupt', field: 'header.baseGuid', seq: 0 },
  { name: 'creation time past 2^53', bytes: () => withHeader((h) => h.writeBigUInt64BE(1n << 60n, 32)), reason: 'corrupt', field: 'header.createdAt', seq: 0 },
  { name: 'volume name length past the payload', bytes: () => withHeader((h) => (h[HEADER_FIXED_LENGTH] = 200)), reason: 'corrupt', field: 'header.volumeNameLength', seq: 0 },
  { name: 'snapshot name length short of the payload', bytes: () => withHeader((h) => (h[HEADER_FIXED_LENGTH + 4] = 3)), reason: 'corrupt', field: 'header.snapshotNameLength', seq: 0 },
  { name: 'a slash in the volume name', bytes: () => withHeader((h) => (h[HEADER_FIXED_LENGTH + 2] = 0x2f)), reason: 'corrupt', field: 'header.volume', seq: 0 },
  { name: 'a NUL in the snapshot name', bytes: () => withHeader((h) => (h[h.length - 1] = 0)), reason: 'corrupt', field: 'header.snapshot', seq: 0 },
  { name: 'a fresh stream with a start offset', bytes: () => withHeader((h) => writeU64(h, 4096, 40)), reason: 'corrupt', field: 'header.startOffset/startSeq/prefix', seq: 0 },
  { name: 'a fresh stream with a prefix digest', bytes: () => withHeader((h) => (h[100] = 1)), reason: 'corrupt', field: 'header.startOffset/startSeq/prefix', seq: 0 },
  { name: 'a resumed stream to a receiver with no saved state', bytes: () => withHeaderOf({ ...base, resume: { offset: 8192, seq: 2, dataBytes: 8192, zeroBytes: 0, digest: Buffer.alloc(32, 3) } }), reason: 'mismatch', field: 'header.resumed', seq: 0 },
  { name: 'a resumed start position that cannot be (more records than bytes)', bytes: () => withHeaderOf({ ...base, resume: { offset: 4096, seq: 9000, dataBytes: 4096, zeroBytes: 0, digest: Buffer.alloc(32, 3) } }), reason: 'corrupt', field: 'header.resume.seq', seq: 0 },
  { name: 'a resumed start offset not on a 4 KiB boundary', bytes: () => withHeaderOf({ ...base, resume: { offset: 512, seq: 1, dataBytes: 0, zeroBytes: 0, digest: Buffer.alloc(32, 3) } }), reason: 'corrupt', field: 'header.resume.offset', seq: 0 },
  { name: 'DATA offset not on a 4 KiB boundary', bytes: () => withHeaderOf(base, [record(RecordType.data, 1, dataPayload(512, 4096))]), reason: 'corrupt', field: 'data.offset', seq: 1 },
  { name: 'DATA overlapping the previous record', bytes: () => withHeaderOf(base, [record(RecordType.data, 1, dataPayload(0, 8192)), record(RecordType.data, 2, dataPayload(4096, 4096))]), reason: 'corrupt', field: 'data.offset', seq: 2 },
  { name: 'DATA at the volume end', bytes: () => withHeaderOf(base, [record(RecordType.data, 1, dataPayload(SIZE, 4096))]), reason: 'corrupt', field: 'data.offset', seq: 1 },
  { name: 'DATA offset past 2^53', bytes: () => { const p = dataPayload(0, 4096); p.writeBigUInt64BE(1n << 63n, 0); return withHeaderOf(base, [record(RecordType.data, 1, p)]); }, reason: 'corrupt', field: 'data.offset', seq: 1 },
  { name: 'DATA length not a multiple of 4 KiB inside the volume', bytes: () => withHeaderOf(base, [record(RecordType.data, 1, dataPayload(0, 4096 + 512))]), reason: 'corrupt', field: 'data.length', seq: 1 },
  { name: 'DATA past the volume end', bytes: () => withHeaderOf(base, [record(RecordType.data, 1, dataPayload(SIZE - 4096, 8192))]), reason: 'corrupt', field: 'data.length', seq: 1 },
  { name: 'ZERO of length 0', bytes: () => withHeaderOf(base, [record(RecordType.zero, 1, range(0, 0))]), reason: 'corrupt', field: 'zero.length', seq: 1 },
  { name: 'ZERO past the volume end', bytes: () => withHeaderOf(base, [record(RecordType.zero, 1, range(4096, SIZE))]), reason: 'corrupt', field: 'zero.length', seq: 1 },
  { name: 'ZERO length past 2^53', bytes: () => { const p = range(0, 4096); p.writeBigUInt64BE(1n << 62n, 8); return withHeaderOf(base, [record(RecordType.zero, 1, p)]); }, reason: 'corrupt', field: 'zero.length', seq: 1 },
  { name: 'ZERO going backwards', bytes: () => withHeaderOf(base, [record(RecordType.zero, 1, range(8192, 4096)), record(RecordType.zero, 2, range(0, 4096))]), reason: 'corrupt', field: 'zero.offset', seq: 2 },
  { name: 'END record count', bytes: () => { const p = pieces(); writeU64(p[4]!, 3, RECORD_HEAD_LENGTH); reseal(p[4]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'end.records', seq: 3 },
  { name: 'END data bytes', bytes: () => { const p = pieces(); writeU64(p[4]!, 4096, RECORD_HEAD_LENGTH + 8); reseal(p[4]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'end.dataBytes', seq: 3 },
  { name: 'END zero bytes', bytes: () => { const p = pieces(); writeU64(p[4]!, 0, RECORD_HEAD_LENGTH + 16); reseal(p[4]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'end.zeroBytes', seq: 3 },
  { name: 'END reserved', bytes: () => { const p = pieces(); p[4]![RECORD_HEAD_LENGTH + 31] = 1; reseal(p[4]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'end.reserved', seq: 3 },
  { name: 'END digest', bytes: () => { const p = pieces(); p[4]![RECORD_HEAD_LENGTH + 40]! ^= 1; reseal(p[4]!); return Buffer.concat(p); }, reason: 'corrupt', field: 'end.digest', seq: 3 },
  { name: 'END with nothing before it but a count that says so', bytes: () => withHeaderOf(base, [record(RecordType.end, 1, Buffer.alloc(64))]), reason: 'corrupt', field: 'end.digest', seq: 1 },
  { name: 'a byte after END', bytes: () => Buffer.concat([...pieces(), Buffer.from([0])]), reason: 'corrupt', field: 'trailing bytes' },
  { name: 'a second stream after END', bytes: () => Buffer.concat([...pieces(), ...pieces()]), reason: 'corrupt', field: 'trailing bytes' },
  {
    // Two streams with the same identity and layout but different data: every record of the
    // splice is intact and in sequence, only the digest chain tells that they do not belong together.
    name: 'a splice of two streams at a record boundary',
    bytes: () => {
      const a = pieces();
      const e = new SendStreamEncoder(base);
      e.start();
      e.data(0, Buffer.alloc(8192, 6));
      return Buffer.concat([a[0]!, a[1]!, a[2]!, e.zero(8192, 4096), e.end()]);
    },
    reason: 'corrupt',
    field: 'end.digest',
    seq: 3,
  },
];

for (const c of cases) {
  test(`rejects ${c.name}: ${c.reason} ${c.field}`, () => {
    const bytes = c.bytes();
    assert.throws(
      () => decodeSendStream(bytes),
      (err: unknown) => {
        assert.ok(isDisklessError(err, 'STORE_STREAM_INVALID'), String(err));
        assert.equal(err.data['reason'], c.reason, err.message);
        assert.equal(err.data['field'], c.field, err.message);
        assert.equal(err.data['seq'], c.seq, err.message);
        assert.equal(typeof err.data['allowed'], 'string');
        assert.ok('value' in err.data);
        assert.equal(typeof err.data['streamOffset'], 'number');
        return true;
      },
    );
    // the same error byte by byte: where the damage is found does not depend on chunking
    const d = new SendStreamDecoder();
    assert.throws(() => {
      for (let i = 0; i < bytes.length; i++) d.push(bytes.subarray(i, i + 1));
      d.finish();
    }, (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['field'] === c.field);
  });
}

test('a failed decoder keeps failing with the same error', () => {
  const p = pieces();
  p[2]![100]! ^= 1;
  const d = new SendStreamDecoder();
  let first: unknown;
  try {
    d.push(Buffer.concat(p));
  } catch (err) {
    first = err;
  }
  assert.ok(isDisklessError(first, 'STORE_STREAM_INVALID'));
  assert.equal(d.state, 'failed');
  assert.throws(() => d.push(Buffer.alloc(1)), (err) => err === first);
  assert.throws(() => d.finish(), (err) => err === first);
});

test('nothing of a damaged record is yielded: events stop at the record before it', () => {
  const p = pieces();
  p[3]![RECORD_HEAD_LENGTH + 3]! ^= 1; // ZERO payload
  const d = new SendStreamDecoder();
  const got: string[] = [];
  assert.throws(() => {
    for (const b of p) for (const e of d.push(b)) got.push(e.type);
  });
  assert.deepEqual(got, ['header', 'data']);
});

test('the encoder refuses what the decoder would reject, naming the field', () => {
  const refuses = (fn: () => unknown, field: string) =>
    assert.throws(fn, (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['field'] === field && typeof err.data['allowed'] === 'string');
  refuses(() => new SendStreamEncoder({ ...base, blockSize: 1024 as 512 }), 'header.blockSize');
  refuses(() => new SendStreamEncoder({ ...base, volumeSize: 1000 }), 'header.volumeSize');
  refuses(() => new SendStreamEncoder({ ...base, snapshotGuid: '0000000000000000' }), 'header.snapshotGuid');
  refuses(() => new SendStreamEncoder({ ...base, snapshotGuid: '12' }), 'header.snapshotGuid');
  refuses(() => new SendStreamEncoder({ ...base, kind: 'incremental' }), 'header.baseGuid');
  refuses(() => new SendStreamEncoder({ ...base, baseGuid: '0000000000000001' }), 'header.baseGuid');
  refuses(() => new SendStreamEncoder({ ...base, volume: 'a/b' }), 'header.volume');
  refuses(() => new SendStreamEncoder({ ...base, snapshot: 'x'.repeat(256) }), 'header.snapshot');
  refuses(() => new SendStreamEncoder({ ...base, createdAt: -1 }), 'header.createdAt');
  const e = new SendStreamEncoder(base);
  refuses(() => e.data(0, Buffer.alloc(4096)), 'call');
  e.start();
  refuses(() => e.start(), 'call');
  refuses(() => e.data(100, Buffer.alloc(4096)), 'data.offset');
  refuses(() => e.data(0, Buffer.alloc(1000)), 'data.length');
  refuses(() => e.data(0, Buffer.alloc(0)), 'data.length');
  refuses(() => e.zero(SIZE - 4096, 8192), 'zero.length');
  e.data(8192, Buffer.alloc(4096));
  refuses(() => e.zero(4096, 4096), 'zero.offset');
  e.end();
  refuses(() => e.end(), 'call');
  refuses(() => e.zero(SIZE - 4096, 4096), 'call');
});

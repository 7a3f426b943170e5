/**
 * Golden bytes of the example stream in docs/store-format.md ("Send stream format", Example),
 * laid out field by field from the spec's tables. The CRC32C and SHA-256 values were computed
 * independently (a bit-at-a-time CRC32C and hashlib, outside this code base) and are checked
 * here against a bit-at-a-time reference too, so neither the encoder's tables nor its layout
 * code can drift unnoticed. Each record four ways: generate, parse, round trip, and stream
 * (every split offset).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SendStreamEncoder } from './send-stream-encoder.js';
import { decodeSendStream, SendStreamDecoder, type SendStreamEvent } from './send-stream-decoder.js';
import type { SendStreamHeader } from './send-stream-format.js';

/** Bit-at-a-time CRC32C straight from the definition (RFC 3385), independent of the tables. */
function referenceCrc32c(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const x of bytes) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

const header: SendStreamHeader = {
  kind: 'full',
  blockSize: 512,
  volumeSize: 16384,
  snapshotGuid: '1122334455667788',
  baseGuid: undefined,
  createdAt: 1_700_000_000_000, // 0x18bcfe56800
  volume: 'golden',
  snapshot: 'v1',
  resume: undefined,
};

// Fields separated by | in the order of the spec's tables.
const PREAMBLE = hex('89444c53454e440a | 0001 | 0000 | 02fa326c');
const HEADER_HEAD = hex('0001 | 0000 | 00000072 | 0000000000000000 | 5a1a0bc2 | ea07ba37');
const HEADER_PAYLOAD = hex(`01 | 00 | 0000 | 00000200 | 0000000000004000 | 1122334455667788 | 0000000000000000 | 0000018bcfe56800
  | 0000000000000000 | 0000000000000001 | 0000000000000000 | 0000000000000000
  | 0000000000000000000000000000000000000000000000000000000000000000
  | 06 676f6c64656e | 02 7631`);
const DATA_HEAD = hex('0002 | 0000 | 00001008 | 0000000000000001 | 7e1502f7 | ce21617a');
const DATA_PAYLOAD = Buffer.concat([hex('0000000000001000'), Buffer.alloc(4096, 0xab)]);
const ZERO_HEAD = hex('0003 | 0000 | 00000010 | 0000000000000002 | 237ca321 | 26238a68');
const ZERO_PAYLOAD = hex('0000000000002000 | 0000000000002000');
const D0 = '6a141b260e6d3a457a684a8618c2522a9255aa7699e0e5b44c196a50a016b313';
const D1 = '3a1a437656e1e1bedabcb6f5bb7161fb5c68e24507f6a2312d5a5df8df4cbcdf';
const D2 = 'ebd422355fabeabaec39c0c3691026865f9312bf7102e7293019ecb7d6e93d99';
const END_HEAD = hex('0004 | 0000 | 00000040 | 0000000000000003 | dedcede6 | d161a118');
const END_PAYLOAD = hex(`0000000000000002 | 0000000000001000 | 0000000000002000 | 0000000000000000 | ${D2}`);
const GOLDEN = Buffer.concat([PREAMBLE, HEADER_HEAD, HEADER_PAYLOAD, DATA_HEAD, DATA_PAYLOAD, ZERO_HEAD, ZERO_PAYLOAD, END_HEAD, END_PAYLOAD]);

function encodeExample(): { parts: Buffer[]; whole: Buffer } {
  const e = new SendStreamEncoder(header);
  const parts = [e.start(), Buffer.concat(e.data(4096, Buffer.alloc(4096, 0xab))), e.zero(8192, 8192), e.end()];
  return { parts, whole: Buffer.concat(parts) };
}

test('the reference CRC32C gives the spec check value and the golden checksums', () => {
  assert.equal(referenceCrc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(referenceCrc32c(PREAMBLE.subarray(0, 12)), PREAMBLE.readUInt32BE(12));
  for (const [head, payload] of [[HEADER_HEAD, HEADER_PAYLOAD], [DATA_HEAD, DATA_PAYLOAD], [ZERO_HEAD, ZERO_PAYLOAD], [END_HEAD, END_PAYLOAD]] as const) {
    assert.equal(head.readUInt32BE(4), payload.length);
    assert.equal(referenceCrc32c(payload), head.readUInt32BE(16));
    assert.equal(referenceCrc32c(head.subarray(0, 20)), head.readUInt32BE(20));
  }
  const sha = (...b: Buffer[]) => createHash('sha256').update(Buffer.concat(b)).digest('hex');
  assert.equal(sha(Buffer.alloc(32), HEADER_HEAD), D0);
  assert.equal(sha(hex(D0), DATA_HEAD), D1);
  assert.equal(sha(hex(D1), ZERO_HEAD), D2);
});

test('generate: each record of the example is the golden bytes', () => {
  const { parts, whole } = encodeExample();
  assert.equal(parts[0]!.toString('hex'), Buffer.concat([PREAMBLE, HEADER_HEAD, HEADER_PAYLOAD]).toString('hex'));
  assert.equal(parts[1]!.toString('hex'), Buffer.concat([DATA_HEAD, DATA_PAYLOAD]).toString('hex'));
  assert.equal(parts[2]!.toString('hex'), Buffer.concat([ZERO_HEAD, ZERO_PAYLOAD]).toString('hex'));
  assert.equal(parts[3]!.toString('hex'), Buffer.concat([END_HEAD, END_PAYLOAD]).toString('hex'));
  assert.equal(whole.length, 4410);
});

const expectedEvents = (): unknown[] => [
  { type: 'header', header, position: { seq: 1, offset: 0, dataBytes: 0, zeroBytes: 0, digest: hex(D0) }, bytes: 16 + 24 + 114 },
  { type: 'data', offset: 4096, data: Buffer.alloc(4096, 0xab), position: { seq: 2, offset: 8192, dataBytes: 4096, zeroBytes: 0, digest: hex(D1) }, bytes: 154 + 24 + 4104 },
  { type: 'zero', offset: 8192, length: 8192, position: { seq: 3, offset: 16384, dataBytes: 4096, zeroBytes: 8192, digest: hex(D2) }, bytes: 4282 + 40 },
  { type: 'end', totals: { records: 2, dataBytes: 4096, zeroBytes: 8192, digest: hex(D2) } },
];

const plain = (events: SendStreamEvent[]): unknown[] => events.map((e) => JSON.parse(JSON.stringify(e, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v))) as unknown);

test('parse: the golden bytes decode to the example, field by field', () => {
  assert.deepEqual(plain(decodeSendStream(GOLDEN)), plain(expectedEvents() as SendStreamEvent[]));
});

test('round trip: decode → encode gives the golden bytes again', () => {
  const events = decodeSendStream(GOLDEN);
  const first = events[0]!;
  const h = first.type === 'header' ? first.header : assert.fail('no header');
  const e = new SendStreamEncoder(h);
  const out = [e.start()];
  for (const ev of events) {
    if (ev.type === 'data') out.push(...e.data(ev.offset, ev.data));
    if (ev.type === 'zero') out.push(e.zero(ev.offset, ev.length));
  }
  out.push(e.end());
  assert.ok(Buffer.concat(out).equals(GOLDEN));
  assert.ok(encodeExample().whole.equals(GOLDEN));
});

test('stream: the same events at every split offset, and byte by byte', () => {
  const want = plain(expectedEvents() as SendStreamEvent[]);
  for (let cut = 0; cut <= GOLDEN.length; cut++) {
    const d = new SendStreamDecoder();
    const events = [...d.push(GOLDEN.subarray(0, cut)), ...d.push(GOLDEN.subarray(cut))];
    d.finish();
    assert.deepEqual(plain(events), want, `split at ${cut}`);
  }
  const d = new SendStreamDecoder();
  const events: SendStreamEvent[] = [];
  for (let i = 0; i < GOLDEN.length; i++) events.push(...d.push(GOLDEN.subarray(i, i + 1)));
  assert.deepEqual(plain(events), want);
  assert.deepEqual(d.finish().records, 2);
});

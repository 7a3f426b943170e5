/**
 * Round trips of the send stream codec: random headers and random record plans encoded by
 * `SendStreamEncoder`, cut at random chunk boundaries, decode to exactly the plan (fast-check).
 * Also long runs split into 1 MiB records, views vs copies of pushed chunks, the async reader,
 * and that every proper prefix of a valid stream is "truncated", never "corrupt".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SendStreamEncoder } from './send-stream-encoder.js';
import { decodeSendStream, readSendStream, SendStreamDecoder, type SendStreamEvent } from './send-stream-decoder.js';
import { MAX_DATA_LENGTH, type SendStreamHeader } from './send-stream-format.js';
import { isDisklessError } from '../../errors/index.js';

/** One planned record: data (with its bytes) or a zero run. */
type Planned = { readonly type: 'data'; readonly offset: number; readonly data: Buffer } | { readonly type: 'zero'; readonly offset: number; readonly length: number };

const guidArb = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }).map((g) => g.toString(16).padStart(16, '0'));
const nameArb = fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/);

const headerArb: fc.Arbitrary<SendStreamHeader> = fc
  .record({
    incremental: fc.boolean(),
    blockSize: fc.constantFrom(512 as const, 4096 as const),
    blocks: fc.integer({ min: 1, max: 400 }),
    snapshotGuid: guidArb,
    baseGuid: guidArb,
    createdAt: fc.integer({ min: 0, max: 2 ** 45 }),
    volume: nameArb,
    snapshot: nameArb,
  })
  .filter((r) => r.snapshotGuid !== r.baseGuid)
  .map((r) => ({
    kind: r.incremental ? 'incremental' : 'full',
    blockSize: r.blockSize,
    volumeSize: r.blocks * r.blockSize,
    snapshotGuid: r.snapshotGuid,
    baseGuid: r.incremental ? r.baseGuid : undefined,
    createdAt: r.createdAt,
    volume: r.volume,
    snapshot: r.snapshot,
    resume: undefined,
  }));

/** Lays out `steps` (gap, kind, length in 4 KiB units) over the volume, clipping at its end. */
function plan(volumeSize: number, steps: { gap: number; zero: boolean; blocks: number; fill: number }[]): Planned[] {
  const out: Planned[] = [];
  let at = 0;
  for (const s of steps) {
    const offset = at + s.gap * 4096;
    if (offset >= volumeSize) break;
    const length = Math.min(s.blocks * 4096, volumeSize - offset);
    out.push(s.zero ? { type: 'zero', offset, length } : { type: 'data', offset, data: Buffer.alloc(length, s.fill) });
    at = offset + length;
  }
  return out;
}

const stepsArb = fc.array(fc.record({ gap: fc.integer({ min: 0, max: 3 }), zero: fc.boolean(), blocks: fc.integer({ min: 1, max: 4 }), fill: fc.integer({ min: 0, max: 255 }) }), { maxLength: 12 });

function encode(header: SendStreamHeader, records: readonly Planned[]): Buffer {
  const e = new SendStreamEncoder(header);
  const parts = [e.start()];
  for (const r of records) {
    if (r.type === 'data') parts.push(...e.data(r.offset, r.data));
    else parts.push(e.zero(r.offset, r.length));
  }
  parts.push(e.end());
  return Buffer.concat(parts);
}

/** Cuts `bytes` at the given fractions (sorted, deduplicated). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * (bytes.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function planOf(events: SendStreamEvent[]): Planned[] {
  return events.flatMap((e): Planned[] => (e.type === 'data' ? [{ type: 'data', offset: e.offset, data: Buffer.from(e.data) }] : e.type === 'zero' ? [{ type: 'zero', offset: e.offset, length: e.length }] : []));
}

test('random headers and plans round-trip at random chunk boundaries', () => {
  fc.assert(
    fc.property(headerArb, stepsArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }), (header, steps, cuts) => {
      const records = plan(header.volumeSize, steps);
      const bytes = encode(header, records);
      const d = new SendStreamDecoder();
      const events: SendStreamEvent[] = [];
      for (const chunk of split(bytes, cuts)) events.push(...d.push(chunk));
      const totals = d.finish();
      assert.equal(events[0]!.type, 'header');
      assert.deepEqual({ ...(events[0] as { header: SendStreamHeader }).header }, header);
      assert.deepEqual(planOf(events), records);
      const dataBytes = records.reduce((n, r) => n + (r.type === 'data' ? r.data.length : 0), 0);
      const zeroBytes = records.reduce((n, r) => n + (r.type === 'zero' ? r.length : 0), 0);
      assert.deepEqual({ records: totals.records, dataBytes: totals.dataBytes, zeroBytes: totals.zeroBytes }, { records: records.length, dataBytes, zeroBytes });
      const end = events.at(-1)!;
      assert.ok(end.type === 'end' && end.totals.digest.equals(totals.digest));
    }),
    { numRuns: 300 },
  );
});

test('every proper prefix of a valid stream is truncated, never corrupt', () => {
  fc.assert(
    fc.property(headerArb, stepsArb, (header, steps) => {
      const bytes = encode(header, plan(header.volumeSize, steps));
      for (let cut = 0; cut < bytes.length; cut += 1 + Math.floor(bytes.length / 300)) {
        const d = new SendStreamDecoder();
        d.push(bytes.subarray(0, cut));
        assert.equal(d.complete, false);
        assert.throws(
          () => d.finish(),
          (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['reason'] === 'truncated' && err.data['streamOffset'] === cut,
        );
      }
    }),
    { numRuns: 40 },
  );
});

test('a run longer than 1 MiB becomes consecutive records of at most 1 MiB, ending at an odd volume end', () => {
  const size = 3 * MAX_DATA_LENGTH + 4096 + 512 * 3; // not a multiple of 4096: the last record ends at the volume's end
  const header: SendStreamHeader = { kind: 'full', blockSize: 512, volumeSize: size, snapshotGuid: '00000000000000aa', baseGuid: undefined, createdAt: 0, volume: 'v', snapshot: 's', resume: undefined };
  const run = Buffer.alloc(size - 4096);
  for (let i = 0; i < run.length; i += 4096) run.writeUInt32BE(i, i);
  const bytes = encode(header, [{ type: 'data', offset: 4096, data: run }]);
  const events = decodeSendStream(bytes);
  const data = events.filter((e) => e.type === 'data');
  assert.deepEqual(data.map((e) => [e.offset, e.data.length]), [[4096, MAX_DATA_LENGTH], [4096 + MAX_DATA_LENGTH, MAX_DATA_LENGTH], [4096 + 2 * MAX_DATA_LENGTH, MAX_DATA_LENGTH], [4096 + 3 * MAX_DATA_LENGTH, 1536]]);
  assert.ok(Buffer.concat(data.map((e) => e.data)).equals(run));
});

test('data arriving whole is a view of the chunk; data split across chunks is copied once into its own buffer', () => {
  const header: SendStreamHeader = { kind: 'full', blockSize: 4096, volumeSize: 8192, snapshotGuid: '0000000000000001', baseGuid: undefined, createdAt: 0, volume: 'v', snapshot: 's', resume: undefined };
  const bytes = encode(header, [{ type: 'data', offset: 0, data: Buffer.alloc(8192, 7) }]);
  const whole = decodeSendStream(bytes).find((e) => e.type === 'data')!;
  assert.ok(whole.type === 'data' && whole.data.buffer === bytes.buffer);
  const d = new SendStreamDecoder();
  const mid = bytes.length - 100;
  const events = [...d.push(bytes.subarray(0, mid)), ...d.push(Buffer.from(bytes.subarray(mid)))];
  const split = events.find((e) => e.type === 'data')!;
  assert.ok(split.type === 'data' && split.data.buffer !== bytes.buffer && split.data.equals(Buffer.alloc(8192, 7)));
});

test('readSendStream yields the events of an async source and returns the totals; a cut source throws truncated after the last whole record', async () => {
  const header: SendStreamHeader = { kind: 'incremental', blockSize: 512, volumeSize: 65536, snapshotGuid: '0000000000000002', baseGuid: '0000000000000001', createdAt: 5, volume: 'v', snapshot: 's', resume: undefined };
  const bytes = encode(header, [{ type: 'zero', offset: 0, length: 8192 }, { type: 'data', offset: 8192, data: Buffer.alloc(4096, 1) }]);
  async function* chunks(b: Buffer): AsyncGenerator<Buffer> {
    for (let i = 0; i < b.length; i += 1000) yield b.subarray(i, i + 1000);
  }
  const seen: string[] = [];
  const it = readSendStream(chunks(bytes));
  let r = await it.next();
  while (!r.done) {
    seen.push(r.value.type);
    r = await it.next();
  }
  assert.deepEqual(seen, ['header', 'zero', 'data', 'end']);
  assert.equal(r.value.records, 2);

  const cutAt = bytes.length - 30; // inside END
  const got: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const e of readSendStream(chunks(bytes.subarray(0, cutAt)))) got.push(e.type);
    })(),
    (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['reason'] === 'truncated',
  );
  assert.deepEqual(got, ['header', 'zero', 'data']);

  // bytes after END in a later chunk are refused even by a consumer that stops at `end`
  async function* withTrailer(): AsyncGenerator<Buffer> {
    yield bytes;
    yield Buffer.from([0]);
  }
  await assert.rejects(
    (async () => {
      for await (const e of readSendStream(withTrailer())) if (e.type === 'end') break;
    })(),
    (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['field'] === 'trailing bytes',
  );
});

test('memory stays bounded: at most one record is held between chunks', () => {
  const header: SendStreamHeader = { kind: 'full', blockSize: 4096, volumeSize: 2 * MAX_DATA_LENGTH, snapshotGuid: '0000000000000003', baseGuid: undefined, createdAt: 0, volume: 'v', snapshot: 's', resume: undefined };
  const bytes = encode(header, [{ type: 'data', offset: 0, data: Buffer.alloc(2 * MAX_DATA_LENGTH, 9) }]);
  const d = new SendStreamDecoder();
  let maxHeld = 0;
  for (let i = 0; i < bytes.length; i += 65536) {
    d.push(bytes.subarray(i, i + 65536));
    maxHeld = Math.max(maxHeld, d.buffered);
  }
  d.finish();
  assert.ok(maxHeld > MAX_DATA_LENGTH - 65536, `held ${maxHeld}`);
  assert.ok(maxHeld <= MAX_DATA_LENGTH + 8, `held ${maxHeld}`);
});

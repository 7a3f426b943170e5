/**
 * Fuzzing the send stream codec (src/wire/send-stream) with test/support/mutate.ts: >= 100k
 * mutated streams as they are (mostly stopped by a CRC), >= 100k with every CRC recomputed
 * after mutation (so the field, ordering and END checks behind the CRCs are reached), 100k
 * split at random chunk boundaries into a resuming decoder, and 100k mutated resume tokens.
 * The decoder may only throw DisklessErrors (STORE_STREAM_INVALID); whatever it accepts must
 * re-encode to exactly the same bytes (the format has one encoding per stream).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzDecoder, mutate, prng } from '../support/mutate.js';
import { Crc32c } from '../../src/wire/checksum/crc32c.js';
import { SendStreamEncoder } from '../../src/wire/send-stream/send-stream-encoder.js';
import { decodeSendStream, SendStreamDecoder, type SendStreamEvent } from '../../src/wire/send-stream/send-stream-decoder.js';
import { decodeResumeToken, encodeResumeToken, type ResumeState } from '../../src/wire/send-stream/resume-token.js';
import { chainDigest, INITIAL_DIGEST, PREAMBLE_LENGTH, RECORD_HEAD_LENGTH, RecordType, type SendStreamHeader } from '../../src/wire/send-stream/send-stream-format.js';

const crc = new Crc32c();
const INPUTS = 100_000;

const full: SendStreamHeader = { kind: 'full', blockSize: 512, volumeSize: 7 * 4096 + 1024, snapshotGuid: '00000000000000f1', baseGuid: undefined, createdAt: 1_700_000_000_000, volume: 'golden', snapshot: 'v1', resume: undefined };
const incremental: SendStreamHeader = { ...full, kind: 'incremental', snapshotGuid: '00000000000000f2', baseGuid: '00000000000000f1', snapshot: 'v2' };

function stream(header: SendStreamHeader, build: (e: SendStreamEncoder) => Buffer[]): Buffer {
  const e = new SendStreamEncoder(header);
  return Buffer.concat([e.start(), ...build(e), e.end()]);
}

/** Re-encodes decoded events: equal to the input for every stream the decoder accepts. */
function reencode(events: SendStreamEvent[]): Buffer {
  const first = events[0];
  assert.ok(first && first.type === 'header');
  const e = new SendStreamEncoder(first.header);
  const parts = [e.start()];
  for (const ev of events) {
    if (ev.type === 'data') parts.push(...e.data(ev.offset, ev.data));
    else if (ev.type === 'zero') parts.push(e.zero(ev.offset, ev.length));
  }
  parts.push(e.end());
  return Buffer.concat(parts);
}

const corpus: Buffer[] = [
  stream(full, () => []),
  stream(full, (e) => [...e.data(0, Buffer.alloc(4096, 1)), e.zero(8192, 8192), ...e.data(7 * 4096, Buffer.alloc(1024, 2))]),
  stream(incremental, (e) => [e.zero(0, 4096), ...e.data(4096, Buffer.from(Array.from({ length: 8192 }, (_, i) => i & 0xff))), e.zero(5 * 4096, 2 * 4096 + 1024)]),
  stream({ ...incremental, volume: 'x'.repeat(255), snapshot: 'y' }, (e) => [...e.data(12288, Buffer.alloc(4096, 0xee))]),
];

// a resumed stream and the receiver state it continues
const interrupted = new SendStreamDecoder().push(corpus[2]!.subarray(0, corpus[2]!.length - 100));
const lastKept = interrupted.at(-1)!;
assert.ok(lastKept.type === 'data');
const resumeState: ResumeState = { header: incremental, position: lastKept.position, bytes: lastKept.bytes };
const resumedStream = stream({ ...incremental, resume: lastKept.position }, (e) => [e.zero(5 * 4096, 2 * 4096 + 1024)]);

/**
 * Recomputes the preamble CRC, every record's payload and head CRC, and the END digest (the
 * chain over the resealed heads), as far as the lengths allow: what remains wrong is a field.
 */
function reseal(input: Buffer): Buffer {
  const b = Buffer.from(input);
  if (b.length >= PREAMBLE_LENGTH) b.writeUInt32BE(crc.of(b.subarray(0, 12)), 12);
  let at = PREAMBLE_LENGTH;
  let digest = INITIAL_DIGEST;
  while (at + RECORD_HEAD_LENGTH <= b.length) {
    const type = b.readUInt16BE(at);
    const length = b.readUInt32BE(at + 4);
    const end = at + RECORD_HEAD_LENGTH + length;
    const payload = b.subarray(at + RECORD_HEAD_LENGTH, Math.min(end, b.length));
    if (type === RecordType.end && payload.length >= 64) digest.copy(payload, 32);
    if (end <= b.length) b.writeUInt32BE(crc.of(payload), at + 16);
    b.writeUInt32BE(crc.of(b.subarray(at, at + 20)), at + 20);
    const head = b.subarray(at, at + RECORD_HEAD_LENGTH);
    if (type === RecordType.header && payload.length >= 104 && (payload[1]! & 1) === 1) digest = Buffer.from(payload.subarray(72, 104));
    else if (type !== RecordType.end) digest = chainDigest(digest, head);
    if (end > b.length) break;
    at = end;
  }
  return b;
}

function decodeAndCheck(input: Buffer): void {
  const events = decodeSendStream(input);
  assert.ok(reencode(events).equals(input), `accepted input does not re-encode to itself: ${input.toString('hex')}`);
}

test('the corpus is valid and canonical, and resealing leaves a valid stream as it is', () => {
  for (const c of corpus) {
    decodeAndCheck(c);
    assert.ok(reseal(c).equals(c));
  }
  assert.ok(reseal(resumedStream).equals(resumedStream));
  const d = new SendStreamDecoder({ resume: resumeState });
  d.push(resumedStream);
  assert.equal(d.finish().records, 3);
});

test(`decoder: ${INPUTS} mutated and random streams`, { timeout: 300_000 }, () => {
  const r = fuzzDecoder(decodeAndCheck, corpus, INPUTS, 11);
  assert.equal(r.inputs, INPUTS);
  assert.ok(r.rejected > INPUTS * 0.9, JSON.stringify(r));
});

test(`decoder behind the CRCs: ${INPUTS} mutated streams with every checksum recomputed`, { timeout: 300_000 }, () => {
  const r = fuzzDecoder((b) => decodeAndCheck(reseal(b)), corpus, INPUTS, 12);
  // mutations inside DATA bytes survive resealing and must decode; the rest hit field checks
  assert.ok(r.accepted > 1000 && r.rejected > INPUTS / 2, JSON.stringify(r));
});

test(`resuming decoder at random chunk boundaries: ${INPUTS} mutated resumed streams`, { timeout: 300_000 }, () => {
  const rand = prng(13);
  const r = fuzzDecoder(
    (b) => {
      const input = rand() < 0.5 ? reseal(b) : b;
      const d = new SendStreamDecoder({ resume: resumeState });
      let at = 0;
      while (at < input.length) {
        const n = 1 + Math.floor(rand() * 64);
        d.push(input.subarray(at, at + n));
        at += n;
      }
      d.finish();
    },
    [resumedStream, ...corpus],
    INPUTS,
    14,
  );
  assert.ok(r.accepted > 0 && r.rejected > 0, JSON.stringify(r));
});

test(`resume tokens: ${INPUTS} mutated tokens, as bytes and as text`, { timeout: 300_000 }, () => {
  const token = encodeResumeToken(resumeState);
  const tokenBytes = Buffer.from(token, 'base64url');
  const rand = prng(15);
  const r = fuzzDecoder(
    (b) => {
      let text: string;
      if (rand() < 0.5) {
        const t = Buffer.from(b);
        if (t.length >= 4) t.writeUInt32BE(crc.of(t.subarray(0, t.length - 4)), t.length - 4);
        text = t.toString('base64url');
      } else text = b.toString('latin1');
      const s = decodeResumeToken(text);
      assert.equal(decodeResumeToken(encodeResumeToken(s)).position.offset, s.position.offset);
    },
    [tokenBytes, Buffer.from(token, 'latin1')],
    INPUTS,
    16,
  );
  assert.ok(r.rejected > 0 && r.accepted > 0, JSON.stringify(r));
  // and the mutator's own text mangling of the token string
  const rand2 = prng(17);
  for (let i = 0; i < 5000; i++) {
    const t = mutate(Buffer.from(token), rand2).toString('latin1');
    try {
      decodeResumeToken(t);
    } catch (err) {
      assert.ok((err as { code?: string }).code === 'STORE_STREAM_INVALID', String(err));
    }
  }
});

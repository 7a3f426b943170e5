/**
 * Resume tokens and resumed streams: a receive interrupted after any record and resumed with
 * the token gets exactly the uninterrupted stream's records and END (same totals, same
 * digest); a token or resumed stream that does not continue the saved state is refused with
 * reason "mismatch" before any record is applied; a damaged token is refused by field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Crc32c } from '../checksum/crc32c.js';
import { SendStreamEncoder } from './send-stream-encoder.js';
import { SendStreamDecoder, type SendStreamEvent } from './send-stream-decoder.js';
import { checkContinuation, decodeResumeToken, encodeResumeToken, MAX_RESUME_TOKEN_LENGTH, resumedHeader, type ResumeState } from './resume-token.js';
import type { SendStreamHeader, SendStreamTotals } from './send-stream-format.js';
import { isDisklessError } from '../../errors/index.js';

const base: SendStreamHeader = { kind: 'incremental', blockSize: 4096, volumeSize: 64 * 4096, snapshotGuid: '1111111111111111', baseGuid: '2222222222222222', createdAt: 42, volume: 'golden', snapshot: 'v2', resume: undefined };

type Planned = { readonly type: 'data'; readonly offset: number; readonly data: Buffer } | { readonly type: 'zero'; readonly offset: number; readonly length: number };

/** A plan of 12 records alternating data and zero runs, with gaps. */
const PLAN: Planned[] = Array.from({ length: 12 }, (_, i) => (i % 3 === 2 ? { type: 'zero', offset: i * 5 * 4096, length: 2 * 4096 } : { type: 'data', offset: i * 5 * 4096, data: Buffer.alloc((1 + (i % 4)) * 4096, i + 1) }));

/** The sender: a (possibly resumed) stream of `plan`'s records at or after the header's start offset. */
function send(header: SendStreamHeader, plan: readonly Planned[] = PLAN): Buffer {
  const e = new SendStreamEncoder(header);
  const parts = [e.start()];
  for (const r of plan) {
    if (r.offset < (header.resume?.offset ?? 0)) continue;
    if (r.type === 'data') parts.push(...e.data(r.offset, r.data));
    else parts.push(e.zero(r.offset, r.length));
  }
  parts.push(e.end());
  return Buffer.concat(parts);
}

/** The receiver: applies whole records until the input stops at `cut`; returns what it kept and the state to resume from. */
function receiveUntil(stream: Buffer, cut: number, resume?: ResumeState): { events: SendStreamEvent[]; state: ResumeState | undefined } {
  const d = new SendStreamDecoder(resume ? { resume } : {});
  const events = d.push(stream.subarray(0, cut));
  let state = resume;
  for (const e of events) {
    if (e.type === 'header') state = { header: e.header, position: e.position, bytes: e.bytes };
    else if (e.type !== 'end') state = { header: state!.header, position: e.position, bytes: e.bytes };
  }
  return { events, state };
}

function records(events: SendStreamEvent[]): unknown[] {
  return events.filter((e) => e.type === 'data' || e.type === 'zero').map((e) => (e.type === 'data' ? ['data', e.offset, e.data.toString('hex')] : e.type === 'zero' ? ['zero', e.offset, e.length] : []));
}

function endOf(events: SendStreamEvent[]): SendStreamTotals | undefined {
  const e = events.at(-1);
  return e?.type === 'end' ? e.totals : undefined;
}

const full = send(base);
const uninterrupted = new SendStreamDecoder().push(full);

test('interrupted anywhere and resumed (even twice), the receiver gets the uninterrupted records and END', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: full.length - 1 }), fc.double({ min: 0, max: 1, noNaN: true }), (cut1, second) => {
      const first = receiveUntil(full, cut1);
      if (!first.state) return; // stopped inside the preamble or HEADER: nothing kept, start over
      // the receiver hands out a token; the sender checks it against its snapshot and resumes
      const token = encodeResumeToken(first.state);
      assert.ok(token.length <= MAX_RESUME_TOKEN_LENGTH && /^[A-Za-z0-9_-]+$/.test(token));
      const tokenState = decodeResumeToken(token);
      assert.deepEqual({ ...tokenState.position }, { ...first.state.position });
      const resumed = send(resumedHeader(base, tokenState));
      // interrupted again part way through the resumed stream
      const cut2 = Math.floor(second * resumed.length);
      const mid = receiveUntil(resumed, cut2, first.state);
      const state2 = mid.state!;
      const again = send(resumedHeader(base, decodeResumeToken(encodeResumeToken(state2))));
      const d = new SendStreamDecoder({ resume: state2 });
      const last = d.push(again);
      const totals = d.finish();
      const all = [...first.events, ...mid.events.slice(1), ...last.slice(1)];
      assert.deepEqual(records(all), records(uninterrupted));
      assert.deepEqual(totals, endOf(uninterrupted));
      assert.ok(state2.bytes >= first.state.bytes);
    }),
    { numRuns: 150 },
  );
});

test('resuming after every record was kept sends only the HEADER and END', () => {
  const kept = receiveUntil(full, full.length - 88); // END is 88 bytes
  assert.equal(kept.state!.position.offset, PLAN.at(-1)!.offset + 2 * 4096);
  const resumed = send(resumedHeader(base, kept.state!));
  const d = new SendStreamDecoder({ resume: kept.state! });
  assert.deepEqual(d.push(resumed).map((e) => e.type), ['header', 'end']);
  assert.deepEqual(d.finish(), endOf(uninterrupted));
});

const mismatch = (field: string) => (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['reason'] === 'mismatch' && err.data['field'] === field;

test('the sender refuses a token of another stream', () => {
  const state = receiveUntil(full, 3000).state!;
  assert.throws(() => resumedHeader({ ...base, snapshotGuid: '3333333333333333' }, state), mismatch('resumeToken.snapshotGuid'));
  assert.throws(() => resumedHeader({ ...base, baseGuid: '4444444444444444' }, state), mismatch('resumeToken.baseGuid'));
  assert.throws(() => resumedHeader({ ...base, kind: 'full', baseGuid: undefined }, state), mismatch('resumeToken.kind'));
  assert.throws(() => resumedHeader({ ...base, volumeSize: base.volumeSize * 2 }, state), mismatch('resumeToken.volumeSize'));
  assert.throws(() => resumedHeader({ ...base, blockSize: 512 }, state), mismatch('resumeToken.blockSize'));
});

test('the receiver refuses a resumed stream that does not continue its saved state, before any record', () => {
  const early = receiveUntil(full, 3000).state!;
  const later = receiveUntil(full, 30000).state!;
  assert.ok(later.position.offset > early.position.offset);
  const refuses = (stream: Buffer, state: ResumeState, field: string) => {
    const d = new SendStreamDecoder({ resume: state });
    const got: string[] = [];
    assert.throws(() => {
      for (let i = 0; i < stream.length; i += 4096) for (const e of d.push(stream.subarray(i, i + 4096))) got.push(e.type);
    }, mismatch(field));
    assert.deepEqual(got, []);
  };
  // a stale token: the receiver has kept more than the token says
  refuses(send(resumedHeader(base, early)), later, 'header.startOffset');
  // a token from the future
  refuses(send(resumedHeader(base, later)), early, 'header.startOffset');
  // a fresh stream to a resuming receiver
  refuses(full, later, 'header.resumed');
  // same offset, different records before it (e.g. a token edited to skip a record, CRC redone)
  const skipped: ResumeState = { ...later, position: { ...later.position, seq: later.position.seq - 1 } };
  refuses(send(resumedHeader(base, decodeResumeToken(encodeResumeToken(skipped)))), later, 'header.startSeq');
  const forged: ResumeState = { ...later, position: { ...later.position, digest: Buffer.alloc(32, 9) } };
  refuses(send(resumedHeader(base, decodeResumeToken(encodeResumeToken(forged)))), later, 'header.prefixDigest');
  const lessData: ResumeState = { ...later, position: { ...later.position, dataBytes: later.position.dataBytes - 4096 } };
  refuses(send(resumedHeader(base, lessData)), later, 'header.prefixDataBytes');
  const lessZero: ResumeState = { ...later, position: { ...later.position, zeroBytes: later.position.zeroBytes - 4096 } };
  refuses(send(resumedHeader(base, lessZero)), later, 'header.prefixZeroBytes');
  // another snapshot's stream resumed at the right place
  const other = { ...base, snapshotGuid: '5555555555555555' };
  refuses(send({ ...other, resume: later.position }), later, 'header.snapshotGuid');
  refuses(send({ ...base, baseGuid: '6666666666666666', resume: later.position }), later, 'header.baseGuid');
  refuses(send({ ...base, blockSize: 512, resume: later.position }), later, 'header.blockSize');
});

test('checkContinuation is what the decoder applies', () => {
  const state = receiveUntil(full, 30000).state!;
  const fail = (f: object): never => {
    throw Object.assign(new Error('x'), f);
  };
  assert.doesNotThrow(() => checkContinuation(state, { ...base, resume: state.position }, fail));
  assert.throws(() => checkContinuation(state, { ...base, resume: { ...state.position, offset: 0 } }, fail), { field: 'header.startOffset', reason: 'mismatch' });
});

test('token round trip for any valid header and position', () => {
  const hexGuid = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }).map((g) => g.toString(16).padStart(16, '0'));
  fc.assert(
    fc.property(hexGuid, hexGuid, fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 52 }), fc.stringMatching(/^[A-Za-z0-9._-]{1,255}$/), (g1, g2, blocks, bytes, name) => {
      fc.pre(g1 !== g2);
      const volumeSize = blocks * 4096;
      const offset = Math.floor(blocks / 2) * 4096;
      const state: ResumeState = {
        header: { ...base, snapshotGuid: g1, baseGuid: g2, volumeSize, volume: name, snapshot: name },
        position: { offset, seq: 1 + Math.floor(offset / 8192), dataBytes: Math.floor(offset / 2), zeroBytes: Math.floor(offset / 4), digest: Buffer.alloc(32, blocks & 0xff) },
        bytes,
      };
      const back = decodeResumeToken(encodeResumeToken(state));
      assert.deepEqual({ ...back.header }, { ...state.header, resume: undefined });
      assert.deepEqual({ ...back.position }, { ...state.position });
      assert.equal(back.bytes, bytes);
    }),
    { numRuns: 200 },
  );
});

test('damaged tokens are refused by field', () => {
  const token = encodeResumeToken(receiveUntil(full, 30000).state!);
  const crc = new Crc32c();
  const reseal = (edit: (b: Buffer) => void): string => {
    const b = Buffer.from(token, 'base64url');
    edit(b);
    b.writeUInt32BE(crc.of(b.subarray(0, b.length - 4)), b.length - 4);
    return b.toString('base64url');
  };
  const refuses = (t: string, reason: string, field: string) =>
    assert.throws(() => decodeResumeToken(t), (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['reason'] === reason && err.data['field'] === field, field);
  refuses('', 'corrupt', 'resumeToken');
  refuses('abc+/=', 'corrupt', 'resumeToken');
  refuses('A'.repeat(MAX_RESUME_TOKEN_LENGTH + 1), 'corrupt', 'resumeToken');
  refuses(token.slice(0, 40), 'corrupt', 'resumeToken.length');
  refuses(token.slice(0, -1), 'corrupt', 'resumeToken.crc');
  refuses(token.slice(0, 20) + (token[20] === 'A' ? 'B' : 'A') + token.slice(21), 'corrupt', 'resumeToken.crc');
  refuses(reseal((b) => (b[0] = 2)), 'unsupported', 'resumeToken.version');
  refuses(reseal((b) => (b[2] = 1)), 'corrupt', 'resumeToken.reserved');
  refuses(reseal((b) => b.writeBigUInt64BE(1n << 60n, 4)), 'corrupt', 'resumeToken.bytes');
  refuses(reseal((b) => (b[12 + 1] = 0)), 'corrupt', 'resumeToken.startOffset/startSeq/prefix');
  const fresh = (b: Buffer) => {
    b[12 + 1] = 0;
    b.fill(0, 12 + 40, 12 + 104);
    b[12 + 55] = 1;
  };
  refuses(reseal(fresh), 'corrupt', 'resumeToken.resumed');
  refuses(reseal((b) => b.fill(0, 12 + 16, 12 + 24)), 'corrupt', 'resumeToken.snapshotGuid');
  refuses(reseal((b) => b.writeBigUInt64BE(1n << 40n, 12 + 40)), 'corrupt', 'resumeToken.resume.offset');
  assert.throws(() => encodeResumeToken({ header: base, position: { offset: 5, seq: 1, dataBytes: 0, zeroBytes: 0, digest: Buffer.alloc(32) }, bytes: 0 }), (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['field'] === 'resumeToken.resume.offset');
  assert.throws(() => encodeResumeToken({ header: base, position: { offset: 0, seq: 1, dataBytes: 0, zeroBytes: 0, digest: Buffer.alloc(32) }, bytes: -1 }), (err: unknown) => isDisklessError(err, 'STORE_STREAM_INVALID') && err.data['field'] === 'resumeToken.bytes');
});

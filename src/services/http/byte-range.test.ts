import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { evaluateRange, ifNoneMatchHits, ifRangeAllows, notModifiedSince } from './byte-range.js';
import { parseMacText } from './mac-text.js';

test('single ranges: first-last, open-ended, suffix, clamped to the file (RFC 9110 §14.1.2)', () => {
  assert.deepEqual(evaluateRange('bytes=0-0', 100), { kind: 'partial', start: 0, end: 0 });
  assert.deepEqual(evaluateRange('bytes=10-19', 100), { kind: 'partial', start: 10, end: 19 });
  assert.deepEqual(evaluateRange('bytes=90-', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(evaluateRange('bytes=90-1000', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(evaluateRange('bytes=99-99', 100), { kind: 'partial', start: 99, end: 99 });
  assert.deepEqual(evaluateRange('bytes=-10', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(evaluateRange('bytes=-1000', 100), { kind: 'partial', start: 0, end: 99 });
  assert.deepEqual(evaluateRange('bytes=0-99999999999999999999999', 100), { kind: 'partial', start: 0, end: 99 });
  assert.deepEqual(evaluateRange('Bytes = 5-6 ', 100), { kind: 'partial', start: 5, end: 6 });
  assert.deepEqual(evaluateRange('bytes=5-6, ,', 100), { kind: 'partial', start: 5, end: 6 });
});

test('unsatisfiable: start past the end, zero-length suffix, any range of an empty file', () => {
  for (const [h, size] of [['bytes=100-', 100], ['bytes=100-200', 100], ['bytes=-0', 100], ['bytes=0-', 0], ['bytes=-5', 0], ['bytes=99999999999999999999-', 100]] as const) {
    assert.deepEqual(evaluateRange(h, size), { kind: 'unsatisfiable' }, `${h} of ${size}`);
  }
});

test('ignored (whole file, 200): absent, other units, invalid specs, several ranges', () => {
  for (const h of [undefined, '', 'bytes', 'items=0-1', 'bytes=', 'bytes=5-4', 'bytes=a-b', 'bytes=1-2-3', 'bytes=--1', 'bytes= -', 'bytes=0-1,5-6', 'bytes=-1,-2', 'bytes=1 -2', 'bytes=0x10-']) {
    assert.deepEqual(evaluateRange(h, 100), { kind: 'full' }, String(h));
  }
});

test('every partial range lies inside the file and is what the spec asked for', () => {
  fc.assert(
    fc.property(fc.nat(10_000), fc.nat(20_000), fc.option(fc.nat(20_000)), fc.boolean(), (size, a, b, suffix) => {
      const header = suffix ? `bytes=-${a}` : `bytes=${a}-${b ?? ''}`;
      const r = evaluateRange(header, size);
      if (r.kind === 'partial') {
        assert.ok(r.start >= 0 && r.start <= r.end && r.end < size);
        if (suffix) assert.equal(r.end - r.start + 1, Math.min(a, size));
        else {
          assert.equal(r.start, a);
          assert.equal(r.end, Math.min(b ?? size - 1, size - 1));
        }
      } else if (r.kind === 'unsatisfiable') assert.ok(size === 0 || (suffix ? a === 0 : a >= size));
      else assert.ok(!suffix && b !== null && b < a);
    }),
    { numRuns: 3000 },
  );
});

test('If-Range: strong ETag match or exact date only', () => {
  const etag = '"64-18f"';
  const lm = 'Fri, 20 Nov 2026 10:00:00 GMT';
  assert.equal(ifRangeAllows(undefined, etag, lm), true);
  assert.equal(ifRangeAllows('"64-18f"', etag, lm), true);
  assert.equal(ifRangeAllows('"64-190"', etag, lm), false);
  assert.equal(ifRangeAllows('W/"64-18f"', etag, lm), false);
  assert.equal(ifRangeAllows(lm, etag, lm), true);
  assert.equal(ifRangeAllows('Fri, 20 Nov 2026 10:00:01 GMT', etag, lm), false);
  assert.equal(ifRangeAllows('yesterday', etag, lm), false);
});

test('If-None-Match (weak comparison, lists, *) and If-Modified-Since (whole seconds)', () => {
  assert.equal(ifNoneMatchHits('"a"', '"a"'), true);
  assert.equal(ifNoneMatchHits('W/"a"', '"a"'), true);
  assert.equal(ifNoneMatchHits('"b", "a"', '"a"'), true);
  assert.equal(ifNoneMatchHits('*', '"a"'), true);
  assert.equal(ifNoneMatchHits('"b"', '"a"'), false);
  assert.equal(ifNoneMatchHits('', '"a"'), false);
  const mtime = Date.parse('2026-11-20T10:00:00.750Z');
  assert.equal(notModifiedSince('Fri, 20 Nov 2026 10:00:00 GMT', mtime), true);
  assert.equal(notModifiedSince('Fri, 20 Nov 2026 09:59:59 GMT', mtime), false);
  assert.equal(notModifiedSince('garbage', mtime), false);
});

test('MAC notations in script URLs', () => {
  for (const text of ['52:54:00:ab:CD:ef', '52-54-00-AB-cd-EF', '525400abcdef', '5254.00ab.cdef']) assert.equal(parseMacText(text), '52:54:00:ab:cd:ef', text);
  for (const text of ['', '52:54:00:ab:cd', '52:54:00:ab:cd:ef:01', '52:54-00:ab:cd:ef', '52:54:00:ab:cd:eg', '5254.00ab.cde', '52 54 00 ab cd ef', '525400abcdef0', '../../etc', '52:54:00:ab:cd:ef\n']) {
    assert.equal(parseMacText(text), null, JSON.stringify(text));
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../../errors/index.js';
import { readRequestOptions } from './tftp-options.js';

const o = (...pairs: Array<[string, string]>) => pairs.map(([name, value]) => ({ name, value }));

test("iPXE's options read as numbers", () => {
  assert.deepEqual(readRequestOptions(o(['blksize', '1432'], ['tsize', '0'])), { requested: { blksize: 1432, tsize: 0 }, ignored: [] });
});

test('names are case-insensitive (RFC 2347)', () => {
  const r = readRequestOptions(o(['BLKSIZE', '1468'], ['WindowSize', '16'], ['TimeOut', '3'], ['TSIZE', '0']));
  assert.deepEqual(r.requested, { blksize: 1468, windowsize: 16, timeout: 3, tsize: 0 });
});

test('unknown options are ignored, not refused (RFC 2347)', () => {
  const r = readRequestOptions(o(['multicast', ''], ['blksize', '512'], ['rollover', '0']));
  assert.deepEqual(r.requested, { blksize: 512 });
  assert.deepEqual(r.ignored.map((i) => [i.name, i.reason]), [['multicast', 'unknown'], ['rollover', 'unknown']]);
});

test('range limits of each RFC: values outside are ignored', () => {
  const cases: Array<[string, string, boolean]> = [
    ['blksize', '7', false],
    ['blksize', '8', true],
    ['blksize', '65464', true],
    ['blksize', '65465', false],
    ['timeout', '0', false],
    ['timeout', '1', true],
    ['timeout', '255', true],
    ['timeout', '256', false],
    ['windowsize', '0', false],
    ['windowsize', '1', true],
    ['windowsize', '65535', true],
    ['windowsize', '65536', false],
    ['tsize', '0', true],
    ['tsize', '99999999999999999999', false],
  ];
  for (const [name, value, ok] of cases) {
    const r = readRequestOptions(o([name, value]));
    assert.equal(name in r.requested, ok, `${name}=${value}`);
    if (!ok) assert.equal(r.ignored[0]?.reason, 'out_of_range', `${name}=${value}`);
  }
});

test('malformed values are ignored', () => {
  for (const value of ['', ' 512', '512 ', '+512', '-1', '0x200', '5e2', '512.0', '１２']) {
    const r = readRequestOptions(o(['blksize', value]));
    assert.deepEqual(r.requested, {}, JSON.stringify(value));
    assert.equal(r.ignored[0]?.reason, 'malformed');
  }
});

test('the same option twice is TFTP_DUPLICATE_OPTION, whatever the case', () => {
  assert.throws(() => readRequestOptions(o(['blksize', '512'], ['BlkSize', '1024'])), (e: unknown) => isDisklessError(e, 'TFTP_DUPLICATE_OPTION'));
  assert.throws(() => readRequestOptions(o(['x', '1'], ['X', '2'])), (e: unknown) => isDisklessError(e, 'TFTP_DUPLICATE_OPTION'));
});

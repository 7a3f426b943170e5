import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDisklessError } from '../errors/index.js';
import { formatTable, humanSize, parseSizeOption, parseSnapshotRef, parseVolumeOrSnapshot } from './volume-format.js';
import { parseListType } from './volume-command.js';

test('humanSize prints what zfs list prints: binary units, at most 5 characters, exact multiples without decimals', () => {
  const cases: Array<[number, string]> = [
    [0, '0B'],
    [512, '512B'],
    [1023, '1023B'],
    [1024, '1K'],
    [98304, '96K'],
    [1536, '1.50K'],
    [1572864, '1.50M'],
    [16252928, '15.5M'],
    [162529280, '155M'],
    [10 * 1024 ** 3, '10G'],
    [1024 ** 4 + 1, '1.00T'],
  ];
  for (const [bytes, text] of cases) assert.equal(humanSize(bytes), text, String(bytes));
  for (let b = 1; b < 2 ** 50; b = b * 3 + 7) assert.ok(humanSize(b).length <= 5, `${b} → ${humanSize(b)}`);
});

test('formatTable: aligned with a header, numbers right-aligned; -H tab-separated without header', () => {
  const rows = [['golden', '1.50M', '-'], ['pc1', '96K', 'golden@v1']];
  assert.equal(formatTable(['NAME', 'USED', 'ORIGIN'], rows, false, [false, true, false]), 'NAME     USED  ORIGIN\ngolden  1.50M  -\npc1       96K  golden@v1\n');
  assert.equal(formatTable(['NAME', 'USED', 'ORIGIN'], rows, true, [false, true, false]), 'golden\t1.50M\t-\npc1\t96K\tgolden@v1\n');
});

function usage(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (err: unknown) => isDisklessError(err, 'USAGE') && field.test(String(err.data.field)) && typeof err.data.allowed === 'string');
}

test('argument parsers: NAME@SNAP, sizes and list types refuse bad input naming the argument', () => {
  assert.deepEqual(parseSnapshotRef('argument NAME@SNAP', 'golden@v1'), { volume: 'golden', snapshot: 'v1' });
  assert.deepEqual(parseVolumeOrSnapshot('argument NAME', 'pc1'), { volume: 'pc1' });
  for (const bad of ['golden', '@v1', 'golden@', 'a@b@c']) usage(() => parseSnapshotRef('argument NAME@SNAP', bad), /NAME@SNAP/);
  usage(() => parseVolumeOrSnapshot('argument NAME', ''), /NAME/);
  assert.equal(parseSizeOption('--size', '64MiB'), 64 * 1024 * 1024);
  assert.equal(parseSizeOption('--size', '10G'), 10 * 1024 ** 3);
  usage(() => parseSizeOption('--size', 'big'), /--size/);
  usage(() => parseSizeOption('--capacity', '0'), /--capacity/);
  assert.deepEqual(parseListType('all'), { volumes: true, snapshots: true });
  assert.deepEqual(parseListType('snapshot'), { volumes: false, snapshots: true });
  assert.deepEqual(parseListType('volume,snap'), { volumes: true, snapshots: true });
  usage(() => parseListType('filesystem'), /-t/);
});

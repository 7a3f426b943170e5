import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { testdataPath } from '../../../test/support/testdata.js';
import { decodeZpoolStatus } from './zpool-status.js';

/** Captured from zfs-fuse 0.7 on this machine (a mirror of two files, one corrupted, then scrubbed). */
const testdata = (name: string): string => readFileSync(testdataPath(import.meta.url, name), 'utf8');

test('zpool status (zfs-fuse): a scrubbed mirror with one side repaired', () => {
  const s = decodeZpoolStatus(testdata('zpool-status-mirror-repaired.txt'));
  assert.equal(s.pool, 'dl4a-x3');
  assert.equal(s.state, 'ONLINE');
  assert.deepEqual(s.scrub, { kind: 'completed', errors: 0 });
  assert.deepEqual(s.devices, [
    { name: '/tmp/zx/a.img', state: 'ONLINE', read: 0, write: 0, cksum: 0, repairedBytes: 0 },
    { name: '/tmp/zx/b.img', state: 'ONLINE', read: 0, write: 0, cksum: 32, repairedBytes: 4 * 1024 * 1024 },
  ]);
});

test('zpool status (zfs-fuse): no scrub yet, a single-file pool is its own leaf', () => {
  const s = decodeZpoolStatus(testdata('zpool-status-none.txt'));
  assert.deepEqual(s.scrub, { kind: 'none' });
  assert.deepEqual(s.devices.map((d) => d.name), ['/tmp/zx/p1.img']);
});

test('zpool status: zfs-fuse in progress, OpenZFS wording, unrecoverable errors, and not-status text', () => {
  assert.deepEqual(decodeZpoolStatus('  pool: p\n scrub: scrub in progress for 0h0m, 12.50% done, 0h1m to go\n').scrub, { kind: 'running' });
  assert.deepEqual(decodeZpoolStatus('  pool: p\n  scan: scrub in progress since Sat Nov 21 01:33:43 2026\n').scrub, { kind: 'running' });
  const open = decodeZpoolStatus(
    '  pool: tank\n state: ONLINE\n  scan: scrub repaired 128K in 00:00:01 with 2 errors on Sat Nov 21 01:33:43 2026\nconfig:\n\n\tNAME        STATE     READ WRITE CKSUM\n\ttank        ONLINE       0     0     0\n\t  sda       ONLINE       0     0  1.5K\n\nerrors: 2 data errors\n',
  );
  assert.deepEqual(open.scrub, { kind: 'completed', errors: 2 });
  assert.deepEqual(open.devices, [{ name: 'sda', state: 'ONLINE', read: 0, write: 0, cksum: 1536, repairedBytes: 0 }]);
  assert.deepEqual(decodeZpoolStatus('  pool: p\n scrub: scrub stopped after 0h0m with 0 errors\n').scrub, { kind: 'canceled' });
  assert.throws(() => decodeZpoolStatus('no pools available\n'));
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { classifyZfsFailure, runZfs, zfsError } from './zfs-command.js';

test('classifyZfsFailure maps the messages zfs-fuse prints (captured on this machine) to STORE_* codes', () => {
  const cases: Array<[string, boolean, string]> = [
    ["cannot open 'p/nope': dataset does not exist", false, 'STORE_NOT_FOUND'],
    ["cannot create 'p/c': dataset already exists", false, 'STORE_EXISTS'],
    ["cannot hold 'p/v@s2': tag already exists on this dataset", false, 'STORE_EXISTS'],
    ["cannot release 'nope' from 'p/v@s2': no such tag on this dataset", false, 'STORE_NOT_FOUND'],
    ["cannot destroy 'p/v': filesystem has children\nuse '-r' to destroy the following datasets:", false, 'STORE_HAS_DEPENDENTS'],
    ["cannot destroy 'p/v@s1': snapshot has dependent clones", false, 'STORE_HAS_DEPENDENTS'],
    ["cannot rollback to 'p/v@s1': more recent snapshots exist", false, 'STORE_HAS_DEPENDENTS'],
    ["cannot destroy 'p/v@s2': dataset is busy", false, 'STORE_BUSY'],
    ['cannot receive incremental stream: invalid backup stream', true, 'STORE_STREAM_INVALID'],
    ['cannot receive incremental stream: invalid stream (checksum mismatch)', true, 'STORE_STREAM_INVALID'],
    ['cannot receive incremental stream: destination p/r has been modified\nsince most recent snapshot', true, 'STORE_STREAM_INVALID'],
    ["cannot create 'p/v': out of space", false, 'STORE_NO_SPACE'],
    ['internal error: Function not implemented', false, 'STORE_ZFS'],
  ];
  for (const [stderr, receiving, code] of cases) assert.equal(classifyZfsFailure(stderr, receiving), code, stderr);
  // Outside a receive, stream wording is not a stream error.
  assert.equal(classifyZfsFailure('invalid backup stream', false), 'STORE_ZFS');
});

test('zfsError carries the command line, exit status and stderr', () => {
  const e = zfsError({ command: 'zfs', args: ['destroy', 'p/v'], status: 1, signal: null, stderr: "cannot destroy 'p/v': filesystem has children\n" }, 'destroy volume v', { volume: 'v' });
  assert.equal(e.code, 'STORE_HAS_DEPENDENTS');
  assert.deepEqual({ ...e.data }, { volume: 'v', command: 'zfs destroy p/v', status: 1, signal: null, stderr: "cannot destroy 'p/v': filesystem has children\n" });
});

test('runZfs: a program that cannot start is STORE_ZFS with the errno; a failing one carries its status', async () => {
  await assert.rejects(runZfs('/nonexistent/zfs', ['list'], 'list'), (e: unknown) => isDisklessError(e, 'STORE_ZFS') && e.data['errno'] === 'ENOENT');
  await assert.rejects(runZfs('sh', ['-c', 'echo "it broke" >&2; exit 3'], 'run sh'), (e: unknown) => isDisklessError(e, 'STORE_ZFS') && e.data['status'] === 3 && e.data['stderr'] === 'it broke\n');
});

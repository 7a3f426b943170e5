import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { classifyZfsFailure, runZfs, spawnZfs, zfsError } from './zfs-command.js';

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

test('runZfs: a command that hangs is killed after its timeout: STORE_ZFS naming the command and the timeout, at once even if a child holds its output', async () => {
  for (const script of ['exec sleep 30', 'sleep 3; true']) {
    const t0 = Date.now();
    const err = await runZfs('sh', ['-c', script], 'run a hung zfs', { volume: 'v' }, 300).then(() => undefined, (e: unknown) => e);
    assert.ok(isDisklessError(err, 'STORE_ZFS'), String(err));
    assert.deepEqual({ command: err.data['command'], timeoutMs: err.data['timeoutMs'], volume: err.data['volume'] }, { command: `sh -c ${script}`, timeoutMs: 300, volume: 'v' });
    assert.match(err.message, /did not finish within 300 ms/);
    assert.ok(Date.now() - t0 < 2_000, `${script}: ${Date.now() - t0} ms`);
  }
});

test('spawnZfs: a wait on a streaming command that takes longer than the timeout kills it; done says so', async () => {
  const proc = spawnZfs('sh', ['-c', 'exec sleep 30'], 'ignore', 300);
  const chunks = (proc.child.stdout! as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  await assert.rejects(proc.within(chunks.next(), 'send v@s', { volume: 'v' }), (e: unknown) => isDisklessError(e, 'STORE_ZFS') && e.data['timeoutMs'] === 300 && e.data['command'] === 'sh -c exec sleep 30');
  const end = await proc.done;
  assert.deepEqual({ signal: end.signal, timeoutMs: end.timeoutMs }, { signal: 'SIGKILL', timeoutMs: 300 });
  // A step that settles in time passes through untouched.
  const quick = spawnZfs('sh', ['-c', 'echo hi'], 'ignore', 5_000);
  assert.equal((await quick.within(quick.done, 'run sh', {})).status, 0);
});

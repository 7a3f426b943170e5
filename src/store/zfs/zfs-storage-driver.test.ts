/**
 * The zfs driver against real zfs-fuse, for what the shared conformance suite
 * (test/store/zfs.conformance.test.ts) does not reach: opening and feature detection, the
 * zfs-fuse workarounds (snapshot-open clones, recorded hold tags, EIO as STORE_CORRUPT), the
 * error data of a failed command, and self-healing scrub on a mirrored pool.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, beforeEach, test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { createTestPool, ensureZfsFuse, reimportPool, type TestPool } from '../../../test/support/zfs-fuse.js';
import { fillPattern } from '../../../test/support/block-pattern.js';
import { ZfsStorageDriver } from './zfs-storage-driver.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let pool: TestPool;

before(async () => {
  pool = await createTestPool({ prefix: 'dl4a-drv', size: 256 * MiB });
});

// A daemon that stopped answering fails each later test at once with one message (test/support/zfs-fuse.ts).
beforeEach(() => ensureZfsFuse());

after(async () => {
  await pool?.destroy();
});

const zfsGet = async (prop: string, ds: string): Promise<string> => (await run('zfs', ['get', '-H', '-o', 'value', prop, ds])).stdout.trim();
const datasets = async (root: string): Promise<string[]> => (await run('zfs', ['list', '-H', '-o', 'name', '-r', root])).stdout.trim().split('\n');

test('open: creates the parent dataset (atime off), detects pool version 23 features, rejects bad names and missing pools', async () => {
  const d = await ZfsStorageDriver.open({ dataset: `${pool.name}/a/b` });
  assert.equal(await zfsGet('atime', `${pool.name}/a/b`), 'off');
  assert.deepEqual(d.features, { poolVersion: 23, zvols: false, resumableReceive: false, bookmarks: false, writtenProperty: false, guidProperty: true, holdsCommand: false });
  assert.deepEqual(d.capabilities, { snapshots: true, clones: true, rollback: true, promote: true, holds: true, sendReceive: true, resumableReceive: false, scrub: true, unmap: false });
  assert.ok((await datasets(pool.name)).every((n) => !n.includes('_probe')), 'the zvol probe left nothing');
  for (const bad of ['', '/abs', 'p@s', 'p//x', 'p/x y']) {
    await assert.rejects(ZfsStorageDriver.open({ dataset: bad }), (e: unknown) => isDisklessError(e, 'STORE_INVALID_NAME') && e.data['field'] === 'dataset', bad);
  }
  await assert.rejects(ZfsStorageDriver.open({ dataset: 'dl4a-no-such-pool/x' }), (e: unknown) => isDisklessError(e, 'STORE_NOT_FOUND'));
  await assert.rejects(ZfsStorageDriver.open({ dataset: `${pool.name}/c`, programs: { zfs: '/nonexistent/zfs', zpool: 'zpool' } }), (e: unknown) => isDisklessError(e, 'STORE_ZFS') && e.data['errno'] === 'ENOENT');
});

test('a failed command surfaces as STORE_ZFS with command, status and stderr', async () => {
  // zpool as usual, except that `zpool scrub` fails the way a faulted pool makes it fail.
  const wrapper = join(pool.dir, 'zpool-scrub-fails');
  await writeFile(wrapper, '#!/bin/sh\nif [ "$1" = scrub ]; then echo "cannot scrub $2: pool I/O is currently suspended" >&2; exit 1; fi\nexec zpool "$@"\n', { mode: 0o755 });
  const d = await ZfsStorageDriver.open({ dataset: `${pool.name}/err`, programs: { zfs: 'zfs', zpool: wrapper } });
  await d.create('v', { size: MiB });
  const err = await d.scrub().then(() => undefined, (e: unknown) => e);
  assert.ok(isDisklessError(err, 'STORE_ZFS'), String(err));
  assert.deepEqual({ command: err.data['command'], status: err.data['status'], stderr: err.data['stderr'] }, { command: `${wrapper} scrub ${pool.name}`, status: 1, stderr: `cannot scrub ${pool.name}: pool I/O is currently suspended\n` });
});

test('a zfs command that hangs is killed after commandTimeoutMs: STORE_ZFS naming the command and the timeout; nothing changes', async () => {
  const root = `${pool.name}/hang`;
  const real = await ZfsStorageDriver.open({ dataset: root });
  await real.create('v', { size: MiB });
  await real.snapshot('v', 's');
  // zfs as usual, except that snapshot, send and receive hang the way they do when the daemon stalls.
  const wrapper = join(pool.dir, 'zfs-hangs');
  await writeFile(wrapper, '#!/bin/sh\ncase "$1" in snapshot|send|receive) exec sleep 60;; esac\nexec zfs "$@"\n', { mode: 0o755 });
  const timeoutMs = 1_500;
  const hung = await ZfsStorageDriver.open({ dataset: root, programs: { zfs: wrapper, zpool: 'zpool' }, commandTimeoutMs: timeoutMs });
  const timedOut = (command: RegExp) => (e: unknown): boolean => isDisklessError(e, 'STORE_ZFS') && e.data['timeoutMs'] === timeoutMs && command.test(String(e.data['command'])) && e.message.includes(`did not finish within ${timeoutMs} ms`);
  let t0 = Date.now();
  await assert.rejects(hung.snapshot('v', 's2'), timedOut(new RegExp(`^${wrapper} snapshot ${root}/v@s2$`)));
  assert.ok(Date.now() - t0 < timeoutMs + 5_000, `snapshot gave up after ${Date.now() - t0} ms`);
  t0 = Date.now();
  await assert.rejects(async () => {
    for await (const chunk of hung.send('v', 's')) void chunk;
  }, timedOut(new RegExp(`^${wrapper} send ${root}/v@s$`)));
  assert.ok(Date.now() - t0 < timeoutMs + 5_000, `send gave up after ${Date.now() - t0} ms`);
  t0 = Date.now();
  await assert.rejects(hung.receive('w', real.send('v', 's')), timedOut(new RegExp(`^${wrapper} receive ${root}/w$`)));
  assert.ok(Date.now() - t0 < timeoutMs + 5_000, `receive gave up after ${Date.now() - t0} ms`);
  assert.deepEqual((await real.listSnapshots()).map((x) => `${x.volume}@${x.name}`), ['v@s']);
  assert.deepEqual((await real.list()).map((v) => v.name), ['v']);
  for (const bad of [0, -1, 1.5, Number.NaN, 3_600_001]) {
    await assert.rejects(ZfsStorageDriver.open({ dataset: root, commandTimeoutMs: bad }), (e: unknown) => isDisklessError(e, 'CONFIG_INVALID') && e.data['field'] === 'commandTimeoutMs', String(bad));
  }
});

test('each volume is a dataset holding volume.img and volume.json; snapshots open through a temporary clone that close destroys', async () => {
  const root = `${pool.name}/vols`;
  const d = await ZfsStorageDriver.open({ dataset: root });
  await d.create('v', { size: 8 * MiB, blockSize: 4096 });
  const mp = await zfsGet('mountpoint', `${root}/v`);
  assert.deepEqual(JSON.parse(await readFile(`${mp}/volume.json`, 'utf8')), { format: 'diskless-zfs-volume', version: 1, size: 8 * MiB, blockSize: 4096 });
  const data = fillPattern(Buffer.alloc(MiB), 0, 7);
  const dev = await d.open('v');
  await dev.write(0, data);
  await dev.close();
  await d.snapshot('v', 's');
  const snap = await d.open('v', { snapshot: 's' });
  assert.equal(snap.readOnly, true);
  const during = await datasets(root);
  assert.ok(during.some((n) => n.startsWith(`${root}/_open-${process.pid}-`)), `a clone serves the snapshot: ${during.join(' ')}`);
  assert.deepEqual(await d.list().then((l) => l.map((v) => v.name)), ['v'], 'the clone is not a volume');
  assert.deepEqual((await d.listSnapshots('v'))[0]!.clones, [], 'nor a listed clone');
  await assert.rejects(d.destroySnapshot('v', 's'), (e: unknown) => isDisklessError(e, 'STORE_BUSY'));
  assert.deepEqual(await snap.read(0, MiB), data);
  await snap.close();
  await snap.close();
  assert.deepEqual(await datasets(root), [root, `${root}/v`], 'closing destroyed the clone');

  // A clone left by a process that died is destroyed when a driver next opens the dataset.
  await run('zfs', ['clone', `${root}/v@s`, `${root}/_open-999999999-dead`]);
  await ZfsStorageDriver.open({ dataset: root });
  assert.deepEqual(await datasets(root), [root, `${root}/v`]);
});

test('holds: tags are recorded beside the real holds (zfs-fuse cannot list them); holds placed outside show as unknown', async () => {
  const root = `${pool.name}/holds`;
  const d = await ZfsStorageDriver.open({ dataset: root });
  await d.create('v', { size: MiB });
  await d.snapshot('v', 's');
  await d.hold('v', 's', 'backup');
  await d.hold('v', 's', 'audit');
  assert.equal(await zfsGet('userrefs', `${root}/v@s`), '2');
  assert.deepEqual((await d.listSnapshots('v'))[0]!.holds, ['audit', 'backup']);
  await run('zfs', ['hold', 'someone-else', `${root}/v@s`]);
  assert.deepEqual((await d.listSnapshots('v'))[0]!.holds, ['(unknown-1)', 'audit', 'backup']);
  await d.release('v', 's', 'audit');
  await d.release('v', 's', 'backup');
  await assert.rejects(d.destroySnapshot('v', 's'), (e: unknown) => isDisklessError(e, 'STORE_HELD'), 'the outside hold still counts');
  await run('zfs', ['release', 'someone-else', `${root}/v@s`]);
  await d.destroySnapshot('v', 's');
});

test('destroying an open volume is STORE_BUSY and leaves it intact', async () => {
  const d = await ZfsStorageDriver.open({ dataset: `${pool.name}/busy` });
  await d.create('v', { size: MiB });
  const dev = await d.open('v');
  try {
    await assert.rejects(d.destroy('v'), (e: unknown) => isDisklessError(e, 'STORE_BUSY'));
  } finally {
    await dev.close();
  }
  await d.destroy('v');
  assert.equal(await d.exists('v'), false);
});

/** Offsets in the pool files where `marker` (the start of a volume block) is stored. */
async function findInFile(path: string, marker: Buffer): Promise<number[]> {
  const buf = await readFile(path);
  const out: number[] = [];
  for (let i = buf.indexOf(marker); i >= 0; i = buf.indexOf(marker, i + 1)) out.push(i);
  return out;
}

async function smash(path: string, offsets: number[]): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    for (const at of offsets) await fh.write(Buffer.from('CORRUPTED'), 0, 9, at + 64);
  } finally {
    await fh.close();
  }
}

test('a block with no good copy reads as STORE_CORRUPT (never wrong bytes); scrub counts it as unrecoverable', async () => {
  const p = await createTestPool({ prefix: 'dl4a-bad', size: 128 * MiB });
  try {
    const d = await ZfsStorageDriver.open({ dataset: `${p.name}/v` });
    await d.create('v', { size: 4 * MiB });
    const data = fillPattern(Buffer.alloc(MiB), 0, 11);
    const dev = await d.open('v');
    await dev.write(0, data);
    await dev.close();
    await d.info('v'); // settles: the blocks are on disk
    await reimportPool(p); // drop the cache so the next read comes from the file
    const hits = await findInFile(p.files[0]!, data.subarray(0, 32));
    assert.ok(hits.length >= 1, 'the first record of the volume is in the pool file');
    await smash(p.files[0]!, hits);
    const d2 = await ZfsStorageDriver.open({ dataset: `${p.name}/v` });
    const dev2 = await d2.open('v', { readOnly: true });
    try {
      await assert.rejects(dev2.read(0, 4096), (e: unknown) => isDisklessError(e, 'STORE_CORRUPT'));
      assert.deepEqual(await dev2.read(2 * MiB, 4096), Buffer.alloc(4096), 'other blocks still read');
    } finally {
      await dev2.close();
    }
    const report = await d2.scrub();
    assert.ok(report.unrecoverable >= 1, `scrub: ${JSON.stringify(report)}`);
  } finally {
    await p.destroy();
  }
});

test('on a mirrored pool a damaged copy is healed: scrub reports it repaired and the data reads right', async () => {
  const p = await createTestPool({ prefix: 'dl4a-mir', size: 128 * MiB, mirror: true });
  try {
    const d = await ZfsStorageDriver.open({ dataset: `${p.name}/v` });
    await d.create('v', { size: 4 * MiB });
    const data = fillPattern(Buffer.alloc(2 * MiB), 0, 12);
    const dev = await d.open('v');
    await dev.write(0, data);
    await dev.close();
    await d.info('v');
    await reimportPool(p);
    const hits = await findInFile(p.files[1]!, data.subarray(0, 32));
    assert.ok(hits.length >= 1, 'the first record of the volume is in the second file');
    await smash(p.files[1]!, hits);
    const d2 = await ZfsStorageDriver.open({ dataset: `${p.name}/v` });
    const report = await d2.scrub('v');
    assert.equal(report.volume, 'v');
    assert.ok(report.errors >= 1 && report.repaired === report.errors && report.unrecoverable === 0, `scrub: ${JSON.stringify(report)}`);
    const dev2 = await d2.open('v', { readOnly: true });
    try {
      assert.deepEqual(await dev2.read(0, 2 * MiB), data);
    } finally {
      await dev2.close();
    }
    const again = await d2.scrub();
    assert.deepEqual({ errors: again.errors, unrecoverable: again.unrecoverable }, { errors: 0, unrecoverable: 0 }, 'a second scrub finds nothing left');
  } finally {
    await p.destroy();
  }
});

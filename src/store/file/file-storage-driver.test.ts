import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStorageDriver } from './file-storage-driver.js';
import { isDisklessError } from '../../errors/index.js';
import { demoMbr, writeDemoDisk, DEMO_DISK_SIZE } from '../demo-disk.js';

async function withDriver(fn: (d: FileStorageDriver, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'di-store-'));
  try {
    await fn(new FileStorageDriver({ dataDir: dir }), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const code = (c: string) => (e: unknown) => isDisklessError(e) && e.code === c;

test('create, list, info, exists, destroy', () =>
  withDriver(async (d, dir) => {
    assert.deepEqual(await d.list(), []);
    const v = await d.create('vol1', { size: 8 * 1024 * 1024 });
    assert.equal(v.size, 8 * 1024 * 1024);
    assert.equal(v.blockSize, 512);
    assert.equal(v.used, 0, 'a new volume is sparse');
    assert.deepEqual(v.origin, { kind: 'empty' });
    await d.create('a-vol', { size: 4096, blockSize: 4096 });
    assert.deepEqual((await d.list()).map((x) => x.name), ['a-vol', 'vol1']);
    assert.equal(await d.exists('vol1'), true);
    assert.equal((await stat(join(dir, 'volumes', 'vol1.img'))).size, 8 * 1024 * 1024);
    await assert.rejects(d.create('vol1', { size: 512 }), code('STORE_EXISTS'));
    await d.destroy('vol1');
    assert.equal(await d.exists('vol1'), false);
    await assert.rejects(d.destroy('vol1'), code('STORE_NOT_FOUND'));
    await assert.rejects(d.open('vol1'), code('STORE_NOT_FOUND'));
    assert.deepEqual(await readdir(join(dir, 'volumes')), ['a-vol.img', 'a-vol.json'], 'no temporaries left behind');
  }));

test('bad names and sizes are refused before touching the disk', () =>
  withDriver(async (d) => {
    for (const n of ['', '../x', 'a/b', '.hidden', 'x'.repeat(64), 'nul\0']) await assert.rejects(d.create(n, { size: 512 }), code('STORE_INVALID_NAME'), n);
    for (const s of [0, -512, 513, 1.5, Number.MAX_SAFE_INTEGER + 1]) await assert.rejects(d.create('v', { size: s }), code('STORE_INVALID_SIZE'), String(s));
    await assert.rejects(d.create('v', { size: 4096, blockSize: 1024 as 512 }), code('STORE_INVALID_SIZE'));
    await assert.rejects(d.create('v', { from: '/nonexistent/x.img' }), code('STORE_NOT_FOUND'));
  }));

test('block device reads, writes (single and vectored), flush and range checks', () =>
  withDriver(async (d) => {
    await d.create('v', { size: 1024 * 1024 });
    const dev = await d.open('v');
    assert.equal(dev.size, 1024 * 1024);
    assert.deepEqual(await dev.read(0, 512), Buffer.alloc(512), 'holes read as zeros');
    await dev.write(4096, Buffer.alloc(1024, 0xab));
    await dev.write(8192, [Buffer.alloc(512, 1), Buffer.alloc(1024, 2), Buffer.alloc(512, 3)], { fua: true });
    await dev.flush();
    const back = await dev.read(4096, 6144);
    assert.equal(back.subarray(0, 1024).every((b) => b === 0xab), true);
    assert.equal(back.subarray(4096, 4608).every((b) => b === 1), true);
    assert.equal(back.subarray(4608, 5632).every((b) => b === 2), true);
    assert.equal(back.subarray(5632, 6144).every((b) => b === 3), true);
    const into = Buffer.alloc(512, 0xff);
    await dev.readInto(1024 * 1024 - 512, into);
    assert.deepEqual(into, Buffer.alloc(512));
    for (const [off, len] of [[1024 * 1024, 512], [1024 * 1024 - 512, 1024], [1, 512], [0, 100], [-512, 512]] as const) {
      await assert.rejects(dev.read(off, len), code('STORE_OUT_OF_RANGE'), `${off}+${len}`);
    }
    assert.equal(dev.capabilities.unmap, true, 'ext4/tmpfs punch holes: the volume is thin provisioned');
    await assert.rejects(dev.unmap(1024 * 1024 - 512, 1024), code('STORE_OUT_OF_RANGE'));
    await dev.close();
    await dev.close();
    await assert.rejects(dev.read(0, 512), code('STORE_CLOSED'));
    const ro = await d.open('v', { readOnly: true });
    await assert.rejects(ro.write(0, Buffer.alloc(512)), code('STORE_READ_ONLY'));
    await assert.rejects(ro.unmap(0, 512), code('STORE_READ_ONLY'));
    assert.equal(ro.capabilities.unmap, false, 'a read-only device frees nothing');
    assert.equal((await ro.read(4096, 512))[0], 0xab, 'data survived close and reopen');
    await ro.close();
  }));

test('import keeps data and sparseness; the unsupported operations say so', () =>
  withDriver(async (d, dir) => {
    const src = join(dir, 'demo.raw');
    await writeDemoDisk(src);
    const v = await d.create('demo', { from: src });
    assert.equal(v.size, DEMO_DISK_SIZE);
    assert.ok(v.used <= 64 * 1024, `imported demo disk stays sparse (allocated ${v.used})`);
    assert.deepEqual(v.origin, { kind: 'import', path: src });
    const dev = await d.open('demo', { readOnly: true });
    assert.deepEqual(await dev.read(0, 512), demoMbr());
    await dev.close();
    await assert.rejects(d.create('small', { from: src, size: 512 }), code('STORE_INVALID_SIZE'));
    assert.deepEqual(d.capabilities, { snapshots: false, clones: false, rollback: false, promote: false, holds: false, sendReceive: false, resumableReceive: false, scrub: false, unmap: true });
    await assert.rejects(d.snapshot('demo', 's1'), code('STORE_UNSUPPORTED'));
    await assert.rejects(d.clone('demo', 's1', 'c'), code('STORE_UNSUPPORTED'));
    await assert.rejects(d.rollback('demo', 's1'), code('STORE_UNSUPPORTED'));
    await assert.rejects(d.receive('r', (async function* () {})()), code('STORE_UNSUPPORTED'));
    await assert.rejects(d.scrub('demo'), code('STORE_UNSUPPORTED'));
    await assert.rejects(d.promote('demo'), code('STORE_UNSUPPORTED'));
    await assert.rejects(d.hold('demo', 's1', 't'), code('STORE_UNSUPPORTED'));
    await assert.rejects(d.open('demo', { snapshot: 's1' }), code('STORE_UNSUPPORTED'));
    assert.deepEqual(await d.listSnapshots('demo'), []);
    await assert.rejects(d.send('demo', 's1')[Symbol.asyncIterator]().next(), code('STORE_UNSUPPORTED'));
  }));

test('a damaged sidecar is STORE_BAD_METADATA', () =>
  withDriver(async (d, dir) => {
    await d.create('v', { size: 512 });
    const meta = join(dir, 'volumes', 'v.json');
    const good = await readFile(meta, 'utf8');
    await writeFile(meta, '{nope');
    await assert.rejects(d.open('v'), code('STORE_BAD_METADATA'));
    await writeFile(meta, good.replace('"version": 1', '"version": 99'));
    await assert.rejects(d.info('v'), code('STORE_BAD_METADATA'));
  }));

test('writeDemoDisk refuses a size that is not a multiple of 512 (the MBR layout is in demo-disk.test.ts)', async () => {
  await assert.rejects(writeDemoDisk('/tmp/never', 100), code('STORE_INVALID_SIZE'));
});

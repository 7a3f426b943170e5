import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDisklessError } from '../../errors/index.js';
import { FileBlockDevice, type FileBlockDeviceOptions } from './file-block-device.js';
import { blockAllocation, type BlockAllocation } from './block-allocation.js';

const MiB = 1024 * 1024;
const code = (c: string) => (e: unknown) => isDisklessError(e) && e.code === c;

/** A fresh sparse file of `size` bytes opened as a FileBlockDevice. */
async function device(t: { after(fn: () => Promise<void>): void }, size: number, blockSize = 512, options: FileBlockDeviceOptions = {}, readOnly = false) {
  const dir = await mkdtemp(join(tmpdir(), 'dl-fbd-'));
  const path = join(dir, 'v.img');
  const fh = await open(path, 'w+');
  await fh.truncate(size);
  const handle = readOnly ? (await fh.close(), await open(path, 'r')) : fh;
  const dev = new FileBlockDevice(handle, size, blockSize, readOnly, 'v', options);
  t.after(async () => {
    await dev.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dev, path };
}

/** The native functions as a plain object, so a test can replace one. */
function nativeAllocation(): BlockAllocation {
  const a = blockAllocation()!;
  return { punchHole: a.punchHole.bind(a), punchHoleSync: a.punchHoleSync.bind(a), seekData: a.seekData.bind(a), seekHole: a.seekHole.bind(a) };
}

const allocatedBytes = async (path: string) => (await stat(path)).blocks * 512;

function warnings(): { log: { warn(obj: object, msg: string): void }; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: { warn: (_o: object, msg: string) => void lines.push(msg) } };
}

test('unmap punches a hole: allocated bytes drop, the range reads as zeros, its neighbours keep their data', async (t) => {
  const { dev, path } = await device(t, 8 * MiB);
  assert.equal(dev.capabilities.unmap, true);
  assert.equal(dev.unmapUnavailable, undefined);
  await dev.write(0, Buffer.alloc(4 * MiB, 0xee));
  await dev.flush();
  const before = await allocatedBytes(path);
  assert.ok(before >= 4 * MiB);
  await dev.unmap(MiB, 2 * MiB);
  const after = await allocatedBytes(path);
  assert.ok(before - after >= 2 * MiB, `2 MiB freed (${before} -> ${after})`);
  assert.equal((await dev.read(MiB, 2 * MiB)).every((b) => b === 0), true);
  assert.equal((await dev.read(MiB - 512, 512)).every((b) => b === 0xee), true);
  assert.equal((await dev.read(3 * MiB, 512)).every((b) => b === 0xee), true);
  assert.equal((await stat(path)).size, 8 * MiB, 'the file keeps its size');
});

test('unmap of single 512-byte blocks inside a file-system block zeroes exactly them (LBPRZ holds below the allocation unit)', async (t) => {
  const { dev } = await device(t, MiB);
  await dev.write(0, Buffer.alloc(8192, 0x11));
  await dev.unmap(512, 512);
  await dev.unmap(4096 + 1024, 1536);
  const back = await dev.read(0, 8192);
  for (let i = 0; i < 16; i++) {
    const zero = i === 1 || (i >= 10 && i < 13);
    assert.equal(back.subarray(i * 512, (i + 1) * 512).every((b) => b === (zero ? 0 : 0x11)), true, `block ${i} ${zero ? 'zero' : 'kept'}`);
  }
  const status = await dev.allocationStatus(0, 8192, 10);
  assert.deepEqual(status, [{ offset: 0, length: 8192, mapped: true }], 'partly zeroed file-system blocks stay allocated');
});

test('allocationStatus: alternating extents in whole blocks from the offset, merged, cut by maxExtents and the range', async (t) => {
  const { dev } = await device(t, 4 * MiB, 4096);
  assert.deepEqual(await dev.allocationStatus(0, 4 * MiB, 8), [{ offset: 0, length: 4 * MiB, mapped: false }], 'a new volume is all deallocated');
  await dev.write(64 * 1024, Buffer.alloc(64 * 1024, 1));
  await dev.write(256 * 1024, Buffer.alloc(4096, 2));
  await dev.write(4 * MiB - 4096, Buffer.alloc(4096, 3));
  assert.deepEqual(await dev.allocationStatus(0, 4 * MiB, 16), [
    { offset: 0, length: 64 * 1024, mapped: false },
    { offset: 64 * 1024, length: 64 * 1024, mapped: true },
    { offset: 128 * 1024, length: 128 * 1024, mapped: false },
    { offset: 256 * 1024, length: 4096, mapped: true },
    { offset: 256 * 1024 + 4096, length: 4 * MiB - 4096 - (256 * 1024 + 4096), mapped: false },
    { offset: 4 * MiB - 4096, length: 4096, mapped: true },
  ]);
  assert.deepEqual(await dev.allocationStatus(0, 4 * MiB, 2), [
    { offset: 0, length: 64 * 1024, mapped: false },
    { offset: 64 * 1024, length: 64 * 1024, mapped: true },
  ], 'maxExtents stops the list');
  assert.deepEqual(await dev.allocationStatus(96 * 1024, 64 * 1024, 8), [
    { offset: 96 * 1024, length: 32 * 1024, mapped: true },
    { offset: 128 * 1024, length: 32 * 1024, mapped: false },
  ], 'starts at the offset (inside data) and stops at the end of the range');
  await dev.unmap(64 * 1024, 64 * 1024);
  assert.deepEqual((await dev.allocationStatus(0, 512 * 1024, 8))[0], { offset: 0, length: 256 * 1024, mapped: false }, 'after unmap the holes merge');
  await assert.rejects(dev.allocationStatus(4 * MiB, 4096, 1), code('STORE_OUT_OF_RANGE'));
  await assert.rejects(dev.allocationStatus(100, 4096, 1), code('STORE_OUT_OF_RANGE'));
});

test('allocationStatus: a file shorter than the volume reads as deallocated past its end', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dl-fbd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fh = await open(join(dir, 'short.img'), 'w+');
  await fh.write(Buffer.alloc(8192, 9), 0, 8192, 0);
  const dev = new FileBlockDevice(fh, MiB, 512, false, 'short');
  t.after(() => dev.close());
  assert.deepEqual(await dev.allocationStatus(0, MiB, 4), [
    { offset: 0, length: 8192, mapped: true },
    { offset: 8192, length: MiB - 8192, mapped: false },
  ]);
});

test('a file system that cannot punch holes: unmap is off with a warning, unmap and allocationStatus say STORE_UNSUPPORTED', async (t) => {
  const real = nativeAllocation();
  const refusing: BlockAllocation = {
    ...real,
    punchHoleSync: () => {
      throw Object.assign(new Error('fallocate(FALLOC_FL_PUNCH_HOLE) failed: EOPNOTSUPP'), { code: 'EOPNOTSUPP' });
    },
  };
  const w = warnings();
  const { dev } = await device(t, MiB, 512, { allocation: refusing, log: w.log });
  assert.equal(dev.capabilities.unmap, false);
  assert.match(dev.unmapUnavailable!, /EOPNOTSUPP/);
  assert.equal(w.lines.length, 1);
  assert.match(w.lines[0]!, /unmap off \(fully provisioned\).*cannot punch holes/);
  await assert.rejects(dev.unmap(0, 512), code('STORE_UNSUPPORTED'));
  await assert.rejects(dev.allocationStatus(0, 512, 1), code('STORE_UNSUPPORTED'));
});

test('without the native functions, and on a read-only device, unmap is off (read-only: silently)', async (t) => {
  const w = warnings();
  const { dev } = await device(t, MiB, 512, { allocation: null, log: w.log });
  assert.equal(dev.capabilities.unmap, false);
  assert.match(w.lines[0] ?? '', /native addon/);
  const r = warnings();
  const { dev: ro } = await device(t, MiB, 512, { log: r.log }, true);
  assert.equal(ro.capabilities.unmap, false);
  assert.deepEqual(r.lines, []);
  await assert.rejects(ro.unmap(0, 512), code('STORE_READ_ONLY'));
});

test('a punch refused at run time (EOPNOTSUPP) writes zeros instead, warning once; other errors are STORE_IO', async (t) => {
  const real = nativeAllocation();
  let fail = 'EOPNOTSUPP';
  const flaky: BlockAllocation = { ...real, punchHole: async () => Promise.reject(Object.assign(new Error(`punch: ${fail}`), { code: fail })) };
  const w = warnings();
  const { dev } = await device(t, MiB, 512, { allocation: flaky, log: w.log });
  assert.equal(dev.capabilities.unmap, true);
  await dev.write(0, Buffer.alloc(4096, 0x77));
  await dev.unmap(0, 2048);
  await dev.unmap(2048, 512);
  const back = await dev.read(0, 4096);
  assert.equal(back.subarray(0, 2560).every((b) => b === 0), true);
  assert.equal(back.subarray(2560).every((b) => b === 0x77), true);
  assert.equal(w.lines.length, 1);
  fail = 'EIO';
  await assert.rejects(dev.unmap(0, 512), (e: unknown) => isDisklessError(e, 'STORE_IO') && e.data['errno'] === 'EIO');
});

test('close waits for a punch still running on the thread pool before releasing the descriptor', async (t) => {
  const real = nativeAllocation();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const events: string[] = [];
  const slow: BlockAllocation = {
    ...real,
    punchHole: async (fd, o, n) => {
      await gate;
      await real.punchHole(fd, o, n);
      events.push('punched');
    },
  };
  const dir = await mkdtemp(join(tmpdir(), 'dl-fbd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fh = await open(join(dir, 'v.img'), 'w+');
  await fh.truncate(MiB);
  const dev = new FileBlockDevice(fh, MiB, 512, false, 'v', { allocation: slow });
  const unmapping = dev.unmap(0, 4096);
  const closing = dev.close().then(() => events.push('closed'));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(events, [], 'close has not finished while the punch waits');
  release();
  await Promise.all([unmapping, closing]);
  assert.deepEqual(events, ['punched', 'closed']);
});

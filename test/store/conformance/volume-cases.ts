/**
 * Conformance cases for volumes and their block devices: names, create/import/list/info/
 * exists/destroy, I/O through `open` (patterns, holes, vectored writes, range checks, flush,
 * reopen), read-only opens and unmap. Every driver must pass all of these.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDisklessError } from '../../../src/errors/index.js';
import { pattern, firstPatternMismatch } from '../../support/block-pattern.js';
import { KiB, MiB, assertAbout, digest, digestPadded, expectedDigest, readRange, rejectsWith, writePattern, type ConformanceCase } from './conformance-support.js';

const BAD_NAMES = ['', '../x', 'a/b', 'a@b', '.hidden', '-dash', 'x'.repeat(64), 'nul\0', 'sp ace'];

export const volumeCases: ConformanceCase[] = [
  {
    name: 'names: invalid volume names are refused with STORE_INVALID_NAME by every call',
    async run({ driver }) {
      for (const n of BAD_NAMES) {
        const what = JSON.stringify(n);
        await rejectsWith(() => driver.create(n, { size: MiB }), 'STORE_INVALID_NAME', `create ${what}`);
        await rejectsWith(() => driver.info(n), 'STORE_INVALID_NAME', `info ${what}`);
        await rejectsWith(() => driver.exists(n), 'STORE_INVALID_NAME', `exists ${what}`);
        await rejectsWith(() => driver.open(n), 'STORE_INVALID_NAME', `open ${what}`);
        await rejectsWith(() => driver.destroy(n), 'STORE_INVALID_NAME', `destroy ${what}`);
        await rejectsWith(() => driver.listSnapshots(n), 'STORE_INVALID_NAME', `listSnapshots ${what}`);
      }
      assert.deepEqual(await driver.list(), [], 'nothing was created');
      // The longest legal name works.
      const longest = 'a'.repeat(63);
      await driver.create(longest, { size: MiB });
      assert.equal(await driver.exists(longest), true);
    },
  },
  {
    name: 'create: a new volume is thin, reads zeros, and info says what was asked',
    async run({ driver }) {
      const before = Date.now();
      const v = await driver.create('vol', { size: 64 * MiB });
      assert.equal(v.name, 'vol');
      assert.equal(v.size, 64 * MiB);
      assert.equal(v.blockSize, 512, 'default block size');
      assert.deepEqual(v.origin, { kind: 'empty' });
      assert.ok(v.used < MiB, `a new 64 MiB volume uses ${v.used} bytes: it must be thin`);
      assert.ok(v.referenced < MiB, `referenced ${v.referenced}`);
      const created = Date.parse(v.createdAt);
      assert.ok(/^\d{4}-\d\d-\d\dT/.test(v.createdAt) && created >= before - 2000 && created <= Date.now() + 2000, `createdAt ${v.createdAt}`);
      const v4k = await driver.create('vol4k', { size: 4 * MiB, blockSize: 4096 });
      assert.equal(v4k.blockSize, 4096);
      const dev = await driver.open('vol4k');
      try {
        assert.equal(dev.size, 4 * MiB);
        assert.equal(dev.blockSize, 4096);
        assert.equal(dev.readOnly, false);
        assert.deepEqual(await dev.read(0, 64 * KiB), Buffer.alloc(64 * KiB));
        assert.deepEqual(await dev.read(4 * MiB - 4096, 4096), Buffer.alloc(4096));
      } finally {
        await dev.close();
      }
      assert.deepEqual(await driver.info('vol'), v, 'info repeats what create returned');
    },
  },
  {
    name: 'create: bad sizes and block sizes are refused with STORE_INVALID_SIZE and create nothing',
    async run({ driver }) {
      for (const size of [0, -512, 513, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
        await rejectsWith(() => driver.create('v', { size }), 'STORE_INVALID_SIZE', `size ${size}`);
      }
      await rejectsWith(() => driver.create('v', { size: 6144, blockSize: 4096 }), 'STORE_INVALID_SIZE', 'size not a multiple of 4096');
      await rejectsWith(() => driver.create('v', { size: 8192, blockSize: 1024 as 512 }), 'STORE_INVALID_SIZE', 'block size 1024');
      assert.equal(await driver.exists('v'), false);
      assert.deepEqual(await driver.list(), []);
    },
  },
  {
    name: 'create: an existing name is refused with STORE_EXISTS and the volume keeps its data',
    async run({ driver }) {
      await driver.create('vol', { size: 2 * MiB });
      await writePattern(driver, 'vol', 0, MiB, 7);
      await rejectsWith(() => driver.create('vol', { size: 4 * MiB }), 'STORE_EXISTS', 'second create');
      assert.equal((await driver.info('vol')).size, 2 * MiB);
      assert.equal(firstPatternMismatch(await readRange(driver, 'vol', 0, MiB), 0, 7), -1);
    },
  },
  {
    name: 'import: a raw image comes in byte-identical, rounded up to a block, and may be grown',
    async run({ driver }) {
      const dir = await mkdtemp(join(tmpdir(), 'dl-conf-import-'));
      try {
        // 3 MiB + 100 bytes: data, a 1 MiB zero gap (may stay a hole), data, and a tail that is not a whole block.
        const image = Buffer.alloc(3 * MiB + 100);
        pattern(0, MiB, 11).copy(image, 0);
        pattern(2 * MiB, MiB, 11).copy(image, 2 * MiB);
        image.fill(0xee, 3 * MiB);
        const file = join(dir, 'disk.raw');
        await writeFile(file, image);
        const v = await driver.create('imp', { from: file });
        assert.equal(v.size, 3 * MiB + 512, 'rounded up to the next 512-byte block');
        assert.deepEqual(v.origin, { kind: 'import', path: file });
        const back = await readRange(driver, 'imp', 0, v.size);
        assert.ok(back.subarray(0, image.length).equals(image), 'imported bytes are identical');
        assert.ok(back.subarray(image.length).every((b) => b === 0), 'the rounding tail reads zeros');
        assertAbout(v.referenced, 2 * MiB + 512, 'referenced of the import (the zero MiB need not be stored)', MiB + 512 * KiB);

        const big = await driver.create('imp-big', { from: file, size: 16 * MiB });
        assert.equal(big.size, 16 * MiB);
        assert.equal(await digest(driver, 'imp-big'), digestPadded(image, 16 * MiB), 'grown import: the source, then zeros');

        await rejectsWith(() => driver.create('small', { from: file, size: MiB }), 'STORE_INVALID_SIZE', 'size below the source');
        await rejectsWith(() => driver.create('missing', { from: join(dir, 'nope.raw') }), 'STORE_NOT_FOUND', 'missing source');
        assert.deepEqual((await driver.list()).map((x) => x.name), ['imp', 'imp-big']);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'list, exists, info and destroy: sorted, exact, and destroy is not idempotent',
    async run({ driver }) {
      assert.deepEqual(await driver.list(), []);
      for (const n of ['b-vol', 'a.vol', 'c_vol', 'A1']) await driver.create(n, { size: MiB });
      const names = (await driver.list()).map((v) => v.name);
      assert.deepEqual(names, ['A1', 'a.vol', 'b-vol', 'c_vol'].sort(), 'sorted by name');
      for (const v of await driver.list()) assert.deepEqual(v, await driver.info(v.name), `list and info agree on ${v.name}`);
      assert.equal(await driver.exists('b-vol'), true);
      assert.equal(await driver.exists('nope'), false);
      await driver.destroy('b-vol');
      assert.equal(await driver.exists('b-vol'), false);
      assert.deepEqual((await driver.list()).map((v) => v.name), names.filter((n) => n !== 'b-vol'));
      await rejectsWith(() => driver.destroy('b-vol'), 'STORE_NOT_FOUND', 'second destroy');
      await rejectsWith(() => driver.info('b-vol'), 'STORE_NOT_FOUND', 'info after destroy');
      await rejectsWith(() => driver.open('b-vol'), 'STORE_NOT_FOUND', 'open after destroy');
      await rejectsWith(() => driver.listSnapshots('b-vol'), 'STORE_NOT_FOUND', 'listSnapshots after destroy');
      // The name is free again, and the new volume starts empty.
      await driver.create('b-vol', { size: MiB });
      assert.deepEqual(await readRange(driver, 'b-vol', 0, MiB), Buffer.alloc(MiB));
    },
  },
  {
    name: 'block I/O: patterns at many offsets, vectored writes, holes read zeros, FUA',
    async run({ driver }) {
      await driver.create('io', { size: 32 * MiB });
      const dev = await driver.open('io');
      try {
        assert.equal(typeof dev.capabilities.volatileWriteCache, 'boolean');
        // Writes of assorted sizes and alignments, including ones straddling every power-of-two boundary up to 1 MiB.
        const writes: Array<[number, number]> = [[0, 512], [512, 512], [4096 - 512, 1024], [64 * KiB - 1024, 3 * 1024], [MiB - 512, 2 * 512], [3 * MiB + 512, 700 * 512], [8 * MiB - 64 * KiB, 256 * KiB], [32 * MiB - 4096, 4096]];
        for (const [off, len] of writes) await dev.write(off, pattern(off, len, 21));
        // One vectored write of three unequal pieces.
        const v = pattern(16 * MiB, 12 * KiB, 21);
        await dev.write(16 * MiB, [v.subarray(0, 512), v.subarray(512, 8 * KiB), v.subarray(8 * KiB)], { fua: true });
        writes.push([16 * MiB, 12 * KiB]);
        await dev.flush();
        for (const [off, len] of writes) assert.equal(firstPatternMismatch(await dev.read(off, len), off, 21), -1, `read back ${len} bytes at ${off}`);
        // readInto fills a caller's buffer exactly.
        const target = Buffer.alloc(1536, 0xcc);
        await dev.readInto(4096 - 512, target);
        assert.equal(firstPatternMismatch(target.subarray(0, 1024), 4096 - 512, 21), -1);
        assert.ok(target.subarray(1024).every((b) => b === 0), 'the rest of that block is a hole and reads zeros');
        assert.deepEqual(await dev.read(20 * MiB, MiB), Buffer.alloc(MiB), 'a never-written MiB reads zeros');
        // Overwrite in the middle of earlier data: only that range changes.
        await dev.write(3 * MiB + 100 * 512, pattern(3 * MiB + 100 * 512, 512, 22));
        const mixed = await dev.read(3 * MiB + 512, 700 * 512);
        assert.equal(firstPatternMismatch(mixed.subarray(0, 99 * 512), 3 * MiB + 512, 21), -1);
        assert.equal(firstPatternMismatch(mixed.subarray(99 * 512, 100 * 512), 3 * MiB + 100 * 512, 22), -1);
        assert.equal(firstPatternMismatch(mixed.subarray(100 * 512), 3 * MiB + 101 * 512, 21), -1);
      } finally {
        await dev.close();
      }
    },
  },
  {
    name: 'block I/O: unaligned and out-of-range calls throw STORE_OUT_OF_RANGE, closed devices STORE_CLOSED',
    async run({ driver }) {
      await driver.create('r', { size: MiB });
      const dev = await driver.open('r');
      await rejectsWith(() => dev.read(MiB, 512), 'STORE_OUT_OF_RANGE', 'read at the end');
      await rejectsWith(() => dev.read(MiB - 512, 1024), 'STORE_OUT_OF_RANGE', 'read across the end');
      await rejectsWith(() => dev.read(100, 512), 'STORE_OUT_OF_RANGE', 'unaligned offset');
      await rejectsWith(() => dev.read(0, 100), 'STORE_OUT_OF_RANGE', 'unaligned length');
      await rejectsWith(() => dev.read(-512, 512), 'STORE_OUT_OF_RANGE', 'negative offset');
      await rejectsWith(() => dev.write(MiB, Buffer.alloc(512)), 'STORE_OUT_OF_RANGE', 'write at the end');
      await rejectsWith(() => dev.write(0, Buffer.alloc(100)), 'STORE_OUT_OF_RANGE', 'unaligned write length');
      await rejectsWith(() => dev.write(MiB - 512, [Buffer.alloc(512), Buffer.alloc(512)]), 'STORE_OUT_OF_RANGE', 'vectored write across the end');
      assert.deepEqual(await dev.read(0, MiB), Buffer.alloc(MiB), 'refused writes changed nothing');
      await dev.close();
      await dev.close(); // idempotent
      await rejectsWith(() => dev.read(0, 512), 'STORE_CLOSED', 'read after close');
      await rejectsWith(() => dev.write(0, Buffer.alloc(512)), 'STORE_CLOSED', 'write after close');
      await rejectsWith(() => dev.flush(), 'STORE_CLOSED', 'flush after close');
    },
  },
  {
    name: 'block I/O: concurrent overlapping calls on one device all land',
    async run({ driver }) {
      await driver.create('cc', { size: 8 * MiB });
      const dev = await driver.open('cc');
      try {
        // 128 writes of 64 KiB (every slot once, in a scattered order) in flight at once, with reads mixed in.
        const jobs: Promise<unknown>[] = [];
        for (let i = 0; i < 128; i++) {
          const off = ((i * 37) % 128) * 64 * KiB;
          jobs.push(dev.write(off, pattern(off, 64 * KiB, 31)));
          if (i % 4 === 3) jobs.push(dev.read(((i * 11) % 128) * 64 * KiB, 64 * KiB));
        }
        await Promise.all(jobs);
        await dev.flush();
        assert.equal(firstPatternMismatch(await dev.read(0, 8 * MiB), 0, 31), -1);
      } finally {
        await dev.close();
      }
    },
  },
  {
    name: 'persistence: flushed data survives closing the device and reopening the driver',
    async run(fx) {
      let driver = fx.driver;
      await driver.create('p', { size: 8 * MiB });
      const dev = await driver.open('p');
      await dev.write(MiB, pattern(MiB, 2 * MiB, 41));
      await dev.write(6 * MiB, pattern(6 * MiB, 4096, 41), { fua: true });
      await dev.flush();
      await dev.close();
      const want = expectedDigest(8 * MiB, [{ offset: MiB, length: 2 * MiB, seed: 41 }, { offset: 6 * MiB, length: 4096, seed: 41 }]);
      assert.equal(await digest(driver, 'p'), want, 'reopened device');
      const info = await driver.info('p');
      driver = await fx.reopen();
      assert.equal(await digest(driver, 'p'), want, 'reopened driver');
      assert.deepEqual(await driver.info('p'), info, 'same info after a restart');
    },
  },
  {
    name: 'read-only opens: writes and unmap throw STORE_READ_ONLY, reads work',
    async run({ driver }) {
      await driver.create('ro', { size: MiB });
      await writePattern(driver, 'ro', 0, 64 * KiB, 51);
      const dev = await driver.open('ro', { readOnly: true });
      try {
        assert.equal(dev.readOnly, true);
        await rejectsWith(() => dev.write(0, Buffer.alloc(512)), 'STORE_READ_ONLY', 'write');
        await rejectsWith(() => dev.write(0, Buffer.alloc(512), { fua: true }), 'STORE_READ_ONLY', 'FUA write');
        // A read-only device may also not offer unmap at all (capabilities.unmap false): then either refusal is right.
        const refusal = await dev.unmap(0, 512).then(() => undefined, (err: unknown) => err);
        const allowed = dev.capabilities.unmap ? ['STORE_READ_ONLY'] : ['STORE_READ_ONLY', 'STORE_UNSUPPORTED'];
        assert.ok(isDisklessError(refusal) && allowed.includes(refusal.code), `unmap on a read-only device: expected ${allowed.join(' or ')}, got ${String(refusal)}`);
        assert.equal(firstPatternMismatch(await dev.read(0, 64 * KiB), 0, 51), -1);
      } finally {
        await dev.close();
      }
    },
  },
  {
    name: 'unmap: the range reads zeros and its space is freed (STORE_UNSUPPORTED when the device cannot)',
    async run({ driver }) {
      await driver.create('um', { size: 8 * MiB });
      await writePattern(driver, 'um', 0, 4 * MiB, 61);
      const before = await driver.info('um');
      assertAbout(before.referenced, 4 * MiB, 'referenced after writing 4 MiB');
      const dev = await driver.open('um');
      try {
        if (!driver.capabilities.unmap) assert.equal(dev.capabilities.unmap, false, 'a device cannot unmap when its driver cannot');
        if (!dev.capabilities.unmap) {
          await rejectsWith(() => dev.unmap(0, MiB), 'STORE_UNSUPPORTED', 'unmap without the capability');
          await rejectsWith(() => dev.allocationStatus(0, MiB, 8), 'STORE_UNSUPPORTED', 'allocationStatus without the capability');
          assert.equal(firstPatternMismatch(await dev.read(0, MiB), 0, 61), -1, 'refused unmap changed nothing');
          return;
        }
        await dev.unmap(MiB, 2 * MiB);
        await dev.flush();
        assert.equal(firstPatternMismatch(await dev.read(0, MiB), 0, 61), -1, 'before the range');
        assert.deepEqual(await dev.read(MiB, 2 * MiB), Buffer.alloc(2 * MiB), 'the unmapped range reads zeros');
        assert.equal(firstPatternMismatch(await dev.read(3 * MiB, MiB), 3 * MiB, 61), -1, 'after the range');
        const status = await dev.allocationStatus(0, 8 * MiB, 16);
        assert.equal(status[0]!.offset, 0);
        for (let i = 1; i < status.length; i++) {
          assert.equal(status[i]!.offset, status[i - 1]!.offset + status[i - 1]!.length, 'extents are consecutive');
          assert.notEqual(status[i]!.mapped, status[i - 1]!.mapped, 'neighbours differ');
        }
        const mappedAt = (at: number) => status.find((e) => e.offset <= at && at < e.offset + e.length)?.mapped;
        assert.equal(mappedAt(0), true);
        assert.equal(mappedAt(2 * MiB), false);
        assert.equal(mappedAt(6 * MiB), false);
        await rejectsWith(() => dev.unmap(8 * MiB - 512, 1024), 'STORE_OUT_OF_RANGE', 'unmap past the end');
      } finally {
        await dev.close();
      }
      assertAbout((await driver.info('um')).referenced, 2 * MiB, 'referenced after unmapping 2 of 4 MiB');
    },
  },
];

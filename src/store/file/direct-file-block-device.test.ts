import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDisklessError } from '../../errors/index.js';
import { cachedPrefix, preadNoWait } from '../../net/pread-no-wait.js';
import { openExportDevice } from '../../cli/export-command.js';
import { DirectFileBlockDevice } from './direct-file-block-device.js';
import { directIo } from './direct-io.js';
import { FileBlockDevice } from './file-block-device.js';

const MiB = 1 << 20;

async function withFile(size: number, fn: (file: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'di-direct-'));
  try {
    const file = join(dir, 'v.img');
    await writeFile(file, randomBytes(size));
    await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Bytes of [offset, offset + length) of `file` in the page cache, from the front (RWF_NOWAIT reads). */
async function cachedBytes(file: string, offset: number, length: number): Promise<number> {
  const pread = preadNoWait();
  assert.ok(pread, 'the native addon has preadv2(RWF_NOWAIT)');
  const h = await open(file, 'r');
  try {
    return Math.max(0, cachedPrefix(pread, h.fd, Buffer.alloc(length), offset));
  } finally {
    await h.close();
  }
}

test('--direct export device: O_DIRECT reads and writes, aligned to what statx reports, land where asked and leave the page cache alone', async () => {
  await withFile(4 * MiB, async (file) => {
    const dev = await openExportDevice(file, false, 512, undefined, true);
    assert.ok(dev instanceof DirectFileBlockDevice);
    const alignment = (dev as DirectFileBlockDevice).alignment;
    assert.ok(alignment.offset >= 512 && alignment.offset <= 4096, `offset alignment ${alignment.offset}`);
    assert.equal(dev.blockSize, Math.max(512, alignment.offset));
    const bs = dev.blockSize;
    const expected = await readFile(file);
    // Writes: one buffer, a vectored one in uneven pieces, one with FUA, at block offsets that are not page-aligned.
    const a = randomBytes(bs);
    const parts = [randomBytes(1000), randomBytes(3 * bs - 1000)];
    const c = randomBytes(64 * 1024);
    await dev.write(bs * 3, a);
    await dev.write(MiB + bs, parts);
    await dev.write(2 * MiB, c, { fua: true });
    a.copy(expected, bs * 3);
    Buffer.concat(parts).copy(expected, MiB + bs);
    c.copy(expected, 2 * MiB);
    assert.equal(await cachedBytes(file, 2 * MiB, c.length), 0, 'a direct write leaves no page of its range cached');
    assert.ok((await readFile(file)).equals(expected), 'the file holds what was written');
    // Reads, many at once (the thread pool runs them in parallel), each into a buffer at an odd address.
    const reads = Array.from({ length: 64 }, (_, i) => ({ offset: ((i * 7919) % (4 * MiB / bs - 8)) * bs, length: bs * (1 + (i % 8)) }));
    const got = await Promise.all(
      reads.map(async (r) => {
        const target = Buffer.alloc(r.length + 3).subarray(3);
        await dev.readInto(r.offset, target);
        return target;
      }),
    );
    reads.forEach((r, i) => assert.ok(got[i]!.equals(expected.subarray(r.offset, r.offset + r.length)), `read ${r.length} at ${r.offset}`));
    // A buffered write by someone else is seen by the next direct read (the kernel writes dirty pages back first).
    const h = await open(file, 'r+');
    const d = randomBytes(bs);
    await h.write(d, 0, bs, 5 * bs);
    await h.close();
    assert.ok((await dev.read(5 * bs, bs)).equals(d));
    await assert.rejects(dev.readInto(1, Buffer.alloc(bs)), (e: unknown) => isDisklessError(e, 'STORE_OUT_OF_RANGE'));
    await assert.rejects(dev.write(4 * MiB, Buffer.alloc(bs)), (e: unknown) => isDisklessError(e, 'STORE_OUT_OF_RANGE'));
    await dev.close();
    await assert.rejects(dev.read(0, bs), (e: unknown) => isDisklessError(e, 'STORE_CLOSED'));
  });
});

test('direct device at 4096-byte alignment; read-only; a file shortened behind its back reads zeros past the end', async () => {
  await withFile(MiB, async (file) => {
    const io = directIo();
    assert.ok(io, 'the native addon has alignedBuffer and directIoAlignment');
    const aligned = io.alignedBuffer(8192, 4096);
    assert.equal(aligned.length, 8192);
    assert.ok(aligned.equals(Buffer.alloc(8192)), 'zero-filled');
    assert.throws(() => io.alignedBuffer(4096, 3000), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => io.alignedBuffer(0, 4096), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => io.directIoAlignment(-1), { code: 'ERR_INVALID_ARG_TYPE' });

    const expected = await readFile(file);
    const direct = await open(file, fsc.O_RDWR | fsc.O_DIRECT);
    const dev = new DirectFileBlockDevice(direct, new FileBlockDevice(await open(file, 'r+'), MiB, 4096, false, 'v', { allocation: null }), { memory: 4096, offset: 4096 }, io);
    const w = randomBytes(8192);
    await dev.write(4096 * 5, w);
    w.copy(expected, 4096 * 5);
    assert.ok((await dev.read(0, MiB)).equals(expected));
    assert.throws(() => new DirectFileBlockDevice(direct, new FileBlockDevice(direct, MiB, 512, false, 'v', { allocation: null }), { memory: 4096, offset: 4096 }, io), /not a multiple/);
    await truncate(file, MiB - 4096 * 2);
    const tail = await dev.read(MiB - 4096 * 4, 4096 * 4);
    assert.ok(tail.subarray(0, 8192).equals(expected.subarray(MiB - 4096 * 4, MiB - 8192)));
    assert.ok(tail.subarray(8192).equals(Buffer.alloc(8192)), 'past the end of the file reads zeros');
    await dev.close();

    const ro = await openExportDevice(file, true, 512, undefined, true);
    await assert.rejects(ro.write(0, Buffer.alloc(ro.blockSize)), (e: unknown) => isDisklessError(e, 'STORE_READ_ONLY'));
    await ro.close();
  });
});

test('--direct refuses what it cannot serve, naming the option or the file', async () => {
  await assert.rejects(openExportDevice('/nonexistent/disk.img', false, 512, undefined, true), (e: unknown) => isDisklessError(e, 'USAGE') && e.message.includes('argument FILE'));
  await withFile(100, async (file) => {
    // 100 bytes: not one block.
    await assert.rejects(openExportDevice(file, false, 512, undefined, true), (e: unknown) => isDisklessError(e, 'USAGE') && /at least one \d+-byte block/.test(e.message));
  });
});

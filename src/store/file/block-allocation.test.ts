import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockAllocation, NO_MORE } from './block-allocation.js';

const MiB = 1024 * 1024;
const errno = (code: string) => (e: unknown) => (e as NodeJS.ErrnoException).code === code && typeof (e as NodeJS.ErrnoException).errno === 'number';

async function withFile(t: { after(fn: () => Promise<void>): void }, mode: string): Promise<{ fd: number; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'dl-alloc-'));
  const path = join(dir, 'f.img');
  const fd = openSync(path, mode === 'r' ? 'w+' : mode);
  t.after(async () => {
    try {
      closeSync(fd);
    } catch {
      // closed by the test
    }
    await rm(dir, { recursive: true, force: true });
  });
  return { fd, path };
}

test('the addon exports punchHole, punchHoleSync, seekData and seekHole', () => {
  assert.ok(blockAllocation(), 'native/block_alloc.c is built (make native)');
});

test('punchHole frees allocated blocks of a real file (st_blocks drops), keeps its size, and the range reads as zeros', async (t) => {
  const a = blockAllocation()!;
  const { fd } = await withFile(t, 'w+');
  writeSync(fd, Buffer.alloc(4 * MiB, 0x5a), 0, 4 * MiB, 0);
  fsyncSync(fd);
  const before = fstatSync(fd);
  assert.ok(before.blocks * 512 >= 4 * MiB, `written file is allocated (${before.blocks} sectors)`);
  await a.punchHole(fd, MiB, 2 * MiB);
  const after = fstatSync(fd);
  assert.equal(after.size, 4 * MiB, 'KEEP_SIZE');
  assert.ok(before.blocks - after.blocks >= (2 * MiB) / 512, `2 MiB freed: ${before.blocks} -> ${after.blocks} sectors`);
  const back = Buffer.alloc(4 * MiB);
  readSync(fd, back, 0, back.length, 0);
  assert.equal(back.subarray(MiB, 3 * MiB).every((b) => b === 0), true, 'hole reads as zeros');
  assert.equal(back.subarray(0, MiB).every((b) => b === 0x5a) && back.subarray(3 * MiB).every((b) => b === 0x5a), true, 'outside the hole untouched');
});

test('seekData / seekHole find the extents; ENXIO at the end is NO_MORE', async (t) => {
  const a = blockAllocation()!;
  const { fd } = await withFile(t, 'w+');
  writeSync(fd, Buffer.alloc(4 * MiB, 1), 0, 4 * MiB, 0);
  fsyncSync(fd);
  await a.punchHole(fd, MiB, MiB);
  assert.equal(a.seekData(fd, 0), 0);
  assert.equal(a.seekHole(fd, 0), MiB);
  assert.equal(a.seekData(fd, MiB), 2 * MiB);
  assert.equal(a.seekHole(fd, 2 * MiB), 4 * MiB, 'the end of the file is a hole');
  assert.equal(a.seekData(fd, 4 * MiB), NO_MORE, 'no data at the end');
  assert.equal(a.seekHole(fd, 4 * MiB), NO_MORE, 'nothing at or past the end');
  assert.equal(a.seekData(fd, 100 * MiB), NO_MORE);
  await a.punchHole(fd, 0, 4 * MiB);
  assert.equal(a.seekData(fd, 0), NO_MORE, 'all holes');
  assert.equal(a.seekHole(fd, 0), 0);
});

test('punchHoleSync past the end of the file frees nothing and succeeds (the capability probe)', async (t) => {
  const a = blockAllocation()!;
  const { fd } = await withFile(t, 'w+');
  writeSync(fd, Buffer.alloc(MiB, 7), 0, MiB, 0);
  fsyncSync(fd);
  const blocks = fstatSync(fd).blocks;
  a.punchHoleSync(fd, 2 * MiB, 4096);
  assert.equal(fstatSync(fd).blocks, blocks);
  assert.equal(fstatSync(fd).size, MiB);
});

test('errors are errno-named (EBADF on a read-only or closed descriptor, with errno and syscall); bad arguments are TypeErrors', async (t) => {
  const a = blockAllocation()!;
  const { path, fd } = await withFile(t, 'w+');
  writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 0);
  const ro = openSync(path, 'r');
  try {
    assert.throws(() => a.punchHoleSync(ro, 0, 4096), errno('EBADF'));
    await assert.rejects(a.punchHole(ro, 0, 4096), (e: NodeJS.ErrnoException & { syscall?: string }) => e.code === 'EBADF' && /PUNCH_HOLE/.test(e.syscall ?? ''));
  } finally {
    closeSync(ro);
  }
  closeSync(fd);
  assert.throws(() => a.seekData(fd, 0), errno('EBADF'), 'a closed descriptor');
  for (const bad of [[-1, 0, 1], [fd, -1, 1], [fd, 0, 0], [fd, 0.5, 1], [fd, 2 ** 53, 1], ['3', 0, 1]] as const) {
    assert.throws(() => a.punchHoleSync(bad[0] as number, bad[1], bad[2]), (e: NodeJS.ErrnoException) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE', JSON.stringify(bad));
  }
  assert.throws(() => a.seekHole(0, -5), TypeError);
  assert.throws(() => (a.punchHole as unknown as (x: number) => Promise<void>)(1), TypeError, 'missing arguments throw, they do not reject');
});

test('preallocate reserves blocks (st_blocks grows) past the end without changing the size or any data; bad arguments throw a TypeError', async (t) => {
  const a = blockAllocation()!;
  assert.equal(typeof a.preallocate, 'function', 'native/block_alloc.c exports preallocate');
  const { fd } = await withFile(t, 'w+');
  writeSync(fd, Buffer.alloc(MiB, 0x33), 0, MiB, 0);
  const before = fstatSync(fd);
  await a.preallocate!(fd, MiB, 8 * MiB);
  const after = fstatSync(fd);
  assert.equal(after.size, MiB, 'KEEP_SIZE: the size is unchanged');
  assert.ok(after.blocks * 512 >= before.blocks * 512 + 8 * MiB, `8 MiB more reserved (${before.blocks} -> ${after.blocks} sectors)`);
  const back = Buffer.alloc(MiB);
  readSync(fd, back, 0, MiB, 0);
  assert.ok(back.equals(Buffer.alloc(MiB, 0x33)), 'the data before the range is untouched');
  assert.throws(() => a.preallocate!(fd, -1, 10), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ERR_INVALID_ARG_TYPE');
  await assert.rejects(a.preallocate!(987654, 0, 4096), errno('EBADF'));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preadNoWait } from '../../net/pread-no-wait.js';
import { blockChecksums, CHECKSUM_BLOCK } from './block-checksums.js';
import { composedReadBlocks, MAX_READ_BLOCKS, nativeReadBlocks, NOT_CACHED, sumsMatch, verifyScratch, type ReadBlocks } from './verified-read.js';
import { prng } from '../../../test/support/mutate.js';

const B = CHECKSUM_BLOCK;
const BLOCKS = 300;

function withFile(fn: (fd: number, data: Buffer, sums: Uint32Array) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'dl-verified-'));
  const data = randomBytes(BLOCKS * B);
  writeFileSync(join(dir, 'f'), data); // just written: in the page cache
  const fd = openSync(join(dir, 'f'), 'r');
  try {
    fn(fd, data, blockChecksums(data, new Uint32Array(BLOCKS)));
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

function implementations(): [string, ReadBlocks][] {
  const out: [string, ReadBlocks][] = [['composed', composedReadBlocks(preadNoWait()!)]];
  const native = nativeReadBlocks();
  if (native) out.push(['native', native]);
  return out;
}

test('readBlocks is native on this x86-64 host (make builds the addon)', () => {
  assert.equal(typeof nativeReadBlocks(), 'function');
});

test('readBlocks fills any range (aligned or not, one block or up to 257) and gives the CRC32C of every whole covering block', () => {
  const rand = prng(20261121);
  withFile((fd, data, sums) => {
    for (const [name, read] of implementations()) {
      const scratch = verifyScratch();
      const cases: [number, number][] = [
        [0, B],
        [512, B], // a 4 KiB read on 512-byte LBAs: two covering blocks
        [B - 1, 2],
        [3 * B, 16 * B],
        [100, 31 * B + 7], // 33 covering blocks: the most a range within one 128 KiB extent has
        [B, 32 * B - 1],
        [0, 256 * B], // 1 MiB, aligned
        [B - 512, 256 * B], // 1 MiB, not aligned: MAX_READ_BLOCKS covering blocks
        [BLOCKS * B - 10, 10],
      ];
      for (let i = 0; i < 60; i++) {
        const pos = Math.floor(rand() * (BLOCKS * B - 1));
        cases.push([pos, 1 + Math.floor(rand() * Math.min(BLOCKS * B - pos - 1, (rand() < 0.5 ? 32 : 256) * B))]);
      }
      for (const [pos, len] of cases) {
        const what = `${name}: ${len} bytes at ${pos}`;
        const target = Buffer.alloc(len + 9, 0xee);
        const first = Math.floor(pos / B);
        const n = Math.floor((pos + len - 1) / B) - first + 1;
        scratch.crcs.fill(0);
        assert.equal(read(fd, pos, target, 5, 5 + len, scratch), n, what);
        assert.ok(target.subarray(5, 5 + len).equals(data.subarray(pos, pos + len)), `${what}: bytes`);
        assert.ok(target.subarray(0, 5).every((b) => b === 0xee) && target.subarray(5 + len).every((b) => b === 0xee), `${what}: nothing outside [start, end) is touched`);
        for (let i = 0; i < n; i++) assert.equal(scratch.crcs[i], sums[first + i], `${what}: checksum of covering block ${i}, edge blocks whole`);
        assert.ok(sumsMatch(scratch.crcs, 0, n, sums, first));
        const wrong = sums.slice();
        wrong[first + n - 1] = (wrong[first + n - 1]! ^ 1) >>> 0;
        assert.ok(!sumsMatch(scratch.crcs, 0, n, wrong, first), `${what}: the last block's checksum is compared`);
      }
      // past the end of the file: not a verified read (the ordinary read zero-fills)
      assert.equal(read(fd, BLOCKS * B - B, Buffer.alloc(2 * B), 0, 2 * B, scratch), NOT_CACHED, `${name}: past the end`);
      assert.throws(() => read(fd, 512, Buffer.alloc(MAX_READ_BLOCKS * B), 0, MAX_READ_BLOCKS * B, scratch), RangeError, `${name}: more covering blocks than scratch holds checksums for`);
    }
  });
});

test('the native read refuses bad arguments with a TypeError or RangeError instead of crashing', () => {
  const native = nativeReadBlocks()!;
  withFile((fd) => {
    const scratch = verifyScratch();
    const small = { bytes: Buffer.alloc(100), crcs: new Uint32Array(1) };
    assert.throws(() => native(fd, 0, Buffer.alloc(B), 0, B, small), TypeError, 'scratch too small');
    assert.throws(() => native(fd, 0, Buffer.alloc(B), 0, B + 1, scratch), TypeError, 'end past the target');
    assert.throws(() => native(fd, -1, Buffer.alloc(B), 0, B, scratch), TypeError, 'negative position');
    assert.throws(() => native(fd, 0, Buffer.alloc(B), 0, 0, scratch), RangeError, 'empty range');
    assert.throws(() => native(fd, 0, Buffer.alloc(300 * B), 0, 300 * B, scratch), RangeError, 'more covering blocks than scratch holds checksums for');
  });
});

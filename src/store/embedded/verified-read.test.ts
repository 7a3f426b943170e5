import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preadNoWait } from '../../net/pread-no-wait.js';
import { blockChecksums, CHECKSUM_BLOCK } from './block-checksums.js';
import { composedReadVerified, MISMATCH, nativeReadVerified, NOT_CACHED, VERIFIED, verifyScratch, type ReadVerified } from './verified-read.js';
import { prng } from '../../../test/support/mutate.js';

const B = CHECKSUM_BLOCK;
const BLOCKS = 40;

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

function implementations(): [string, ReadVerified][] {
  const out: [string, ReadVerified][] = [['composed', composedReadVerified(preadNoWait()!)]];
  const native = nativeReadVerified();
  if (native) out.push(['native', native]);
  return out;
}

test('readVerified is native on this x86-64 host (make builds the addon)', () => {
  assert.equal(typeof nativeReadVerified(), 'function');
});

test('readVerified fills any range (aligned or not, one block or many) and rejects a wrong checksum in any covering block', () => {
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
        [BLOCKS * B - 10, 10],
      ];
      for (let i = 0; i < 60; i++) {
        const pos = Math.floor(rand() * (BLOCKS * B - 1));
        cases.push([pos, 1 + Math.floor(rand() * Math.min(BLOCKS * B - pos - 1, 32 * B))]);
      }
      for (const [pos, len] of cases) {
        const what = `${name}: ${len} bytes at ${pos}`;
        const target = Buffer.alloc(len + 9, 0xee);
        const first = Math.floor(pos / B);
        assert.equal(read(fd, pos, target, 5, 5 + len, sums, first, scratch), VERIFIED, what);
        assert.ok(target.subarray(5, 5 + len).equals(data.subarray(pos, pos + len)), `${what}: bytes`);
        assert.ok(target.subarray(0, 5).every((b) => b === 0xee) && target.subarray(5 + len).every((b) => b === 0xee), `${what}: nothing outside [start, end) is touched`);
        // a wrong checksum on each covering block in turn, including edge blocks only partly read
        const last = Math.floor((pos + len - 1) / B);
        for (const bad of new Set([first, last, Math.floor((first + last) / 2)])) {
          const wrong = sums.slice();
          wrong[bad] = (wrong[bad]! ^ 1) >>> 0;
          assert.equal(read(fd, pos, target, 5, 5 + len, wrong, first, scratch), MISMATCH, `${what}: block ${bad} bad`);
        }
      }
      // past the end of the file: not a verified read (the ordinary read zero-fills)
      assert.equal(read(fd, BLOCKS * B - B, Buffer.alloc(2 * B), 0, 2 * B, new Uint32Array(2), 0, scratch), NOT_CACHED, `${name}: past the end`);
    }
  });
});

test('the native read refuses bad arguments with a TypeError or RangeError instead of crashing', () => {
  const native = nativeReadVerified()!;
  withFile((fd, _data, sums) => {
    const scratch = verifyScratch();
    const small = { bytes: Buffer.alloc(100), crcs: new Uint32Array(1) };
    assert.throws(() => native(fd, 0, Buffer.alloc(B), 0, B, sums, 0, small), TypeError, 'scratch too small');
    assert.throws(() => native(fd, 0, Buffer.alloc(B), 0, B + 1, sums, 0, scratch), TypeError, 'end past the target');
    assert.throws(() => native(fd, -1, Buffer.alloc(B), 0, B, sums, 0, scratch), TypeError, 'negative position');
    assert.throws(() => native(fd, 0, Buffer.alloc(B), 0, 0, sums, 0, scratch), RangeError, 'empty range');
    assert.throws(() => native(fd, 0, Buffer.alloc(40 * B), 0, 40 * B, sums, 0, scratch), RangeError, 'more covering blocks than scratch holds checksums for');
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Crc32c } from '../../wire/checksum/crc32c.js';
import { blockChecksums, CHECKSUM_BLOCK, firstBadBlock } from './block-checksums.js';

test('blockChecksums gives each 4 KiB block the same CRC32C as the table implementation, for 1 to 20 blocks and at an offset', () => {
  const table = new Crc32c();
  for (let n = 1; n <= 20; n++) {
    const data = randomBytes(n * CHECKSUM_BLOCK);
    const out = new Uint32Array(n + 3);
    blockChecksums(data, out, 3);
    for (let i = 0; i < n; i++) assert.equal(out[3 + i], table.of(data.subarray(i * CHECKSUM_BLOCK, (i + 1) * CHECKSUM_BLOCK)), `block ${i} of ${n}`);
  }
});

test('firstBadBlock finds the first block whose checksum differs', () => {
  const data = randomBytes(8 * CHECKSUM_BLOCK);
  const sums = blockChecksums(data, new Uint32Array(8));
  const scratch = new Uint32Array(32);
  assert.equal(firstBadBlock(data, sums, 0, scratch), -1);
  data[5 * CHECKSUM_BLOCK + 17]! ^= 0x40;
  assert.equal(firstBadBlock(data, sums, 0, scratch), 5);
  assert.equal(firstBadBlock(data.subarray(5 * CHECKSUM_BLOCK), sums, 5, scratch), 0);
});

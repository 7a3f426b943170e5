import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Crc32c } from '../wire/checksum/crc32c.js';
import { hardwareCrc32c } from './crc32c-hardware.js';

// make builds the addon and this machine is x86-64 with SSE4.2: the hardware path must be there.
test('hardware CRC32C is available on this x86-64 host', () => {
  assert.equal(process.arch, 'x64');
  assert.ok(hardwareCrc32c(), 'crc32cUpdate missing from the native addon');
});

test('hardware CRC32C equals the table version: vectors, every length 0..80, unaligned starts, interleaved rounds of both sizes', () => {
  const hw = new Crc32c(hardwareCrc32c());
  const sw = new Crc32c();
  assert.ok(hw.accelerated);
  assert.equal(hw.of(Buffer.alloc(32)), 0x8a9136aa);
  assert.equal(hw.of(Buffer.from('123456789')), 0xe3069283);
  const big = randomBytes(3 * 4096 * 3 + 777);
  for (let n = 0; n <= 80; n++) for (const off of [0, 1, 3, 7]) assert.equal(hw.of(big.subarray(off, off + n)), sw.of(big.subarray(off, off + n)), `length ${n} at ${off}`);
  // lengths around the 3 x 1360-byte and 3 x 4096-byte interleaved rounds, whole and split into parts
  for (const n of [4079, 4080, 4081, 4096, 8160, 8192, 12287, 12288, 12289, 12288 + 4080, 24576 + 5, big.length - 1]) {
    assert.equal(hw.of(big.subarray(1, 1 + n)), sw.of(big.subarray(1, 1 + n)), `length ${n}`);
    assert.equal(hw.of(big.subarray(0, 100), big.subarray(100, n)), sw.of(big.subarray(0, n)), `split length ${n}`);
  }
});

test('the native update refuses bad arguments with a TypeError instead of crashing', () => {
  const f = hardwareCrc32c()!;
  assert.throws(() => f(0, 'abc' as unknown as Buffer), TypeError);
});

test('without VPCLMULQDQ folding (DISKLESS_CRC32C_NO_FOLD) the crc32-instruction path gives the same values', () => {
  // This CPU folds long buffers (native/crc32c_fold.c); the path other CPUs take is checked in a child process.
  const script = `
    const { Crc32c } = await import(${JSON.stringify(new URL('../wire/checksum/crc32c.js', import.meta.url).href)});
    const { hardwareCrc32c } = await import(${JSON.stringify(new URL('./crc32c-hardware.js', import.meta.url).href)});
    const { blockChecksums } = await import(${JSON.stringify(new URL('../store/embedded/block-checksums.js', import.meta.url).href)});
    const { randomBytes } = await import('node:crypto');
    const hw = new Crc32c(hardwareCrc32c()), sw = new Crc32c();
    const big = randomBytes(40000);
    let bad = 0;
    for (const n of [255, 256, 4079, 4080, 4096, 8192, 12288, 12289, 39999]) if (hw.of(big.subarray(1, 1 + n)) !== sw.of(big.subarray(1, 1 + n))) bad++;
    const sums = blockChecksums(big.subarray(0, 9 * 4096), new Uint32Array(9));
    for (let i = 0; i < 9; i++) if (sums[i] !== sw.of(big.subarray(i * 4096, (i + 1) * 4096))) bad++;
    console.log(bad);`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, DISKLESS_CRC32C_NO_FOLD: '1' }, encoding: 'utf8' });
  assert.equal(out.trim(), '0');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadBufferPool } from './read-buffer-pool.js';

test('buffers are reused per size class after release, never lent twice, foreign and double releases ignored', () => {
  const pool = new ReadBufferPool();
  const a = pool.acquire(4096);
  const b = pool.acquire(3000);
  assert.equal(a.length, 4096);
  assert.equal(b.length, 3000);
  assert.notEqual(a.buffer, b.buffer);
  pool.release(a);
  pool.release(a); // double release: ignored
  pool.release(Buffer.alloc(4096)); // not ours: ignored
  const c = pool.acquire(4000);
  assert.equal(c.buffer, a.buffer, 'reused');
  const d = pool.acquire(4096);
  assert.notEqual(d.buffer, a.buffer, 'the one free buffer went to c, d gets a new one');
  assert.deepEqual(pool.stats, { reused: 1, allocated: 3, released: 1 });
  const big = pool.acquire(130 * 1024);
  assert.equal(big.buffer.byteLength, 256 * 1024);
  const huge = pool.acquire(2 * 1024 * 1024);
  pool.release(huge);
  assert.equal(pool.stats.released, 1, 'above 1 MiB nothing is pooled');
});

test('free bytes are capped', () => {
  const pool = new ReadBufferPool({ maxFreeBytes: 8192 });
  const bufs = [pool.acquire(4096), pool.acquire(4096), pool.acquire(4096)];
  for (const b of bufs) pool.release(b);
  const again = [pool.acquire(4096), pool.acquire(4096), pool.acquire(4096)];
  assert.equal(new Set(again.map((b) => b.buffer)).size, 3);
  assert.equal(pool.stats.reused, 2);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadMerger, type SectorReader } from './read-merger.js';

/** A 1 MiB "device" whose byte i is i mod 251, recording every read it serves. */
function device(failAt?: number): SectorReader & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async read(lba: number, target: Buffer) {
      calls.push(`${lba}+${target.length / 512}`);
      if (failAt !== undefined && lba <= failAt && failAt < lba + target.length / 512) throw new Error(`bad sector ${failAt}`);
      for (let i = 0; i < target.length; i++) target[i] = (lba * 512 + i) % 251;
    },
  };
}

const expect = (lba: number, b: Buffer) => b.every((v, i) => v === (lba * 512 + i) % 251);

test('ReadMerger: adjacent and overlapping reads of one turn become one device read; each target gets its own bytes', async () => {
  const dev = device();
  const m = new ReadMerger(dev);
  const reqs = [[10, 2], [8, 2], [12, 2], [11, 2], [40, 1], [100, 3]].map(([lba, n]) => ({ lba: lba!, buf: Buffer.alloc(n! * 512) }));
  await Promise.all(reqs.map((r) => m.read(r.lba, r.buf)));
  assert.deepEqual(dev.calls.sort(), ['100+3', '40+1', '8+6']);
  for (const r of reqs) assert.ok(expect(r.lba, r.buf), `lba ${r.lba}`);
});

test('ReadMerger: a run stops at maxBytes; flush() issues at once; a failed merged read is retried per request', async () => {
  const dev = device();
  const m = new ReadMerger(dev, 4 * 512);
  const bufs = [0, 2, 4, 6].map(() => Buffer.alloc(1024));
  const all = Promise.all(bufs.map((b, i) => m.read(i * 2, b)));
  m.flush();
  assert.deepEqual(dev.calls, ['0+4', '4+4'], 'issued by flush, before the microtask');
  await all;
  const bad = device(5);
  const m2 = new ReadMerger(bad);
  const r = await Promise.allSettled([0, 2, 4, 6].map((lba) => m2.read(lba, Buffer.alloc(1024))));
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'], 'only the command covering sector 5 fails');
  assert.deepEqual(bad.calls, ['0+8', '0+2', '2+2', '4+2', '6+2']);
});

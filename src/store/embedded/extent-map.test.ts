import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZERO_SLOT, type ExtentEntry } from './extent-entry.js';
import { DENSE_DATA, DENSE_HEADER, DENSE_NONE, DENSE_ZERO, ExtentMap } from './extent-map.js';
import { prng } from '../../../test/support/mutate.js';

/** What the dense record of `index` says, in ExtentEntry terms (undefined: no entry). */
function dense(m: ExtentMap, index: number): { slot: number; mask: number; sums: number[] } | undefined {
  const c = m.chunkOf(index);
  if (!c) return undefined;
  const o = m.recordOf(index);
  if (c[o] === DENSE_NONE) return undefined;
  if (c[o] === DENSE_ZERO) return { slot: ZERO_SLOT, mask: c[o + 2]!, sums: [] };
  assert.equal(c[o], DENSE_DATA);
  return { slot: c[o + 1]!, mask: c[o + 2]!, sums: [...c.subarray(o + DENSE_HEADER, o + DENSE_HEADER + m.blocksPerExtent)] };
}

test('ExtentMap keeps a dense record equal to every entry through set, delete and clear, across chunks', () => {
  const rand = prng(77);
  for (const bpe of [1, 16, 32]) {
    const m = new ExtentMap(bpe);
    const model = new Map<number, ExtentEntry>();
    const check = () => {
      assert.equal(m.size, model.size);
      for (let i = 0; i < 1200; i++) {
        const e = model.get(i);
        const d = dense(m, i);
        if (!e) assert.equal(d, undefined, `extent ${i}: no entry`);
        else assert.deepEqual(d, { slot: e.slot, mask: e.mask, sums: e.slot === ZERO_SLOT ? [] : [...e.sums!] }, `extent ${i}`);
      }
    };
    for (let step = 0; step < 3000; step++) {
      const i = Math.floor(rand() * 1200);
      const r = rand();
      if (r < 0.6) {
        const zero = rand() < 0.2;
        const e: ExtentEntry = zero
          ? { slot: ZERO_SLOT, mask: 0xffffffff >>> (32 - bpe), sums: undefined, txg: 1, stable: 0 }
          : { slot: Math.floor(rand() * 0xffffffff), mask: Math.floor(rand() * 0xffffffff) >>> (32 - bpe), sums: Uint32Array.from({ length: bpe }, () => Math.floor(rand() * 0xffffffff)), txg: 1, stable: 0 };
        m.set(i, e);
        model.set(i, e);
      } else {
        assert.equal(m.delete(i), model.delete(i));
      }
      if (step % 500 === 499) check();
      if (step === 2000) {
        m.clear();
        model.clear();
        check();
      }
    }
    check();
  }
});

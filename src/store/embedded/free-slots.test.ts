import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FreeSlots } from './free-slots.js';

test('FreeSlots hands out the most recently freed slot first, or the one asked for when it is free', () => {
  const f = new FreeSlots([3, 7, 9]);
  assert.equal(f.size, 3);
  assert.equal(f.take(), 9);
  f.push(11);
  assert.equal(f.take(3), 3, 'a free slot asked for');
  assert.equal(f.take(3), 11, 'no longer free: the most recent instead');
  assert.equal(f.take(42), 7, 'never freed: the most recent instead');
  assert.equal(f.take(), undefined);
  assert.equal(f.size, 0);
});

test('FreeSlots skips slots taken out of order, also when they are freed again, and never hands one out twice', () => {
  const f = new FreeSlots();
  for (let s = 0; s < 5000; s++) f.push(s);
  const out = new Set<number>();
  // Take every even slot out of order (this compacts the stack more than once), free some again.
  for (let s = 0; s < 5000; s += 2) {
    assert.equal(f.take(s), s);
    out.add(s);
  }
  for (let s = 0; s < 1000; s += 4) {
    f.push(s);
    out.delete(s);
  }
  f.push(1); // already free: no second copy
  assert.equal(f.size, 2500 + 250);
  const order: number[] = [];
  for (let s = f.take(); s !== undefined; s = f.take()) order.push(s);
  assert.equal(order.length, 2750);
  assert.equal(new Set(order).size, 2750, 'each slot once');
  assert.deepEqual(order.slice(0, 3), [996, 992, 988], 'the slots freed last come first');
  for (const s of order) assert.ok(!out.has(s), `slot ${s} is in use`);
});

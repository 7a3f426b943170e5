/** AoeCommandWindow without sockets or timers: the clock is a number the test moves. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AoeCommandWindow, type CommandSource, type InFlight } from './aoe-command-window.js';

/** A source of `n` numbered commands. */
function source(n: number, from = 0): CommandSource<number> {
  let i = 0;
  return { next: () => (i < n ? from + i++ : undefined) };
}

function window(o: Partial<{ limit: number; timeoutMs: number; tries: number; firstTag: number }> = {}) {
  return new AoeCommandWindow<number>({ limit: 4, timeoutMs: 100, tries: 3, firstTag: 10, ...o });
}

test('fill starts at most `limit` commands, in source order, with consecutive tags', () => {
  const w = window();
  w.enqueue(source(3));
  w.enqueue(source(5, 100));
  const sent: Array<[number, number]> = [];
  assert.equal(
    w.fill(0, (e) => sent.push([e.command, e.tag])),
    4,
  );
  assert.deepEqual(sent, [
    [0, 10],
    [1, 11],
    [2, 12],
    [100, 13],
  ]);
  assert.equal(w.inFlight, 4);
  assert.equal(w.fill(0, () => assert.fail('window is full')), 0);
  assert.equal(w.complete(11)?.command, 1);
  assert.equal(w.fill(1, (e) => sent.push([e.command, e.tag])), 1);
  assert.deepEqual(sent.at(-1), [101, 14]);
  assert.equal(w.maxInFlight, 4);
});

test('complete takes a tag out once: a second answer to it finds nothing (stale)', () => {
  const w = window();
  w.enqueue(source(1));
  w.fill(0, () => undefined);
  assert.equal(w.complete(10)?.command, 0);
  assert.equal(w.complete(10), undefined);
  assert.equal(w.get(10), undefined);
  assert.equal(w.complete(999), undefined);
});

test('expire retransmits under the same tag with a new deadline, then gives up after `tries` sends', () => {
  const w = window({ limit: 2, tries: 3 });
  w.enqueue(source(2));
  w.fill(0, () => undefined);
  const again: InFlight<number>[] = [];
  const gaveUp: InFlight<number>[] = [];
  w.expire(99, (e) => again.push(e), (e) => gaveUp.push(e));
  assert.equal(again.length, 0, 'not yet due');
  w.complete(11);
  w.expire(100, (e) => again.push(e), (e) => gaveUp.push(e));
  assert.deepEqual(again.map((e) => [e.tag, e.tries, e.deadline]), [[10, 2, 200]]);
  assert.equal(w.nextDeadline(), 200);
  w.expire(200, (e) => again.push(e), (e) => gaveUp.push(e));
  assert.deepEqual(again.map((e) => e.tag), [10, 10]);
  w.expire(300, (e) => again.push(e), (e) => gaveUp.push(e));
  assert.deepEqual(gaveUp.map((e) => [e.tag, e.tries]), [[10, 3]]);
  assert.equal(w.inFlight, 0);
  assert.equal(w.nextDeadline(), undefined);
});

test('tags count up modulo 2^32 and skip tags still in flight', () => {
  const w = window({ firstTag: 0xfffffffe, limit: 10 });
  w.enqueue(source(3));
  const tags: number[] = [];
  w.fill(0, (e) => tags.push(e.tag));
  assert.deepEqual(tags, [0xfffffffe, 0xffffffff, 0]);
  // a window whose counter comes round to a tag in flight skips it
  const v = window({ firstTag: 5, limit: 10 });
  v.enqueue(source(1));
  v.fill(0, () => undefined); // tag 5 in flight
  (v as unknown as { tagCounter: number }).tagCounter = 5;
  assert.equal(v.allocateTag(), 6);
});

test('a source that returns undefined leaves the queue; withdraw drops a queued one; setLimit widens the window', () => {
  const w = window({ limit: 1 });
  const a = source(0);
  const b = source(2, 50);
  const c = source(2, 90);
  w.enqueue(a);
  w.enqueue(b);
  w.enqueue(c);
  w.withdraw(c);
  const sent: number[] = [];
  w.fill(0, (e) => sent.push(e.command));
  assert.deepEqual(sent, [50]);
  assert.equal(w.waitingSources, 1, 'a left once empty, b stays while it has commands');
  w.setLimit(8);
  w.fill(0, (e) => sent.push(e.command));
  assert.deepEqual(sent, [50, 51]);
  assert.equal(w.waitingSources, 0);
  assert.equal(w.clear().length, 2);
  assert.equal(w.inFlight, 0);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DisklessError } from '../errors/index.js';
import { FrameOutbox } from './frame-outbox.js';

/** Records calls; frames whose first byte is in `bad` fail (sendMany: the batch stops there, as the kernel does). */
function socket(bad: number[] = []) {
  const calls: string[] = [];
  return {
    calls,
    send(f: Buffer) {
      if (bad.includes(f[0]!)) throw new DisklessError('NET_SEND_FAILED', 'no', { sent: 0 });
      calls.push(`send ${f[0]}`);
    },
    sendMany(frames: readonly Buffer[]) {
      const k = frames.findIndex((f) => bad.includes(f[0]!));
      const ok = k < 0 ? frames : frames.slice(0, k);
      if (ok.length) calls.push(`many ${ok.map((f) => f[0]).join(',')}`);
      if (k >= 0) throw new DisklessError('NET_SEND_FAILED', 'no', { sent: k });
    },
  };
}

test('FrameOutbox: frames pushed in one turn leave in one sendMany, in order, after the turn; callbacks run after sending', async () => {
  const s = socket();
  const done: number[] = [];
  const out = new FrameOutbox(s);
  for (let i = 1; i <= 3; i++) out.push(Buffer.from([i]), (err) => done.push(err === undefined ? i : -i));
  assert.deepEqual(s.calls, [], 'nothing sent synchronously');
  await Promise.resolve();
  assert.deepEqual(s.calls, ['many 1,2,3']);
  assert.deepEqual(done, [1, 2, 3]);
  out.push(Buffer.from([9]));
  await Promise.resolve();
  assert.deepEqual(s.calls, ['many 1,2,3', 'send 9'], 'a lone frame takes plain send');
});

test('FrameOutbox: a failing frame gets its error; the frames after it still go out', async () => {
  const s = socket([3, 6]);
  const results: string[] = [];
  const out = new FrameOutbox(s);
  for (let i = 1; i <= 7; i++) out.push(Buffer.from([i]), (err) => results.push(err === undefined ? `${i} ok` : `${i} failed`));
  await Promise.resolve();
  assert.deepEqual(s.calls, ['many 1,2', 'many 4,5', 'send 7']);
  assert.deepEqual(results, ['1 ok', '2 ok', '3 failed', '4 ok', '5 ok', '6 failed', '7 ok']);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DisklessError } from '../errors/index.js';
import { FrameOutbox } from './frame-outbox.js';

function socket(fail?: { at: number }) {
  const calls: string[] = [];
  return {
    calls,
    send(f: Buffer) {
      calls.push(`send ${f[0]}`);
    },
    sendMany(frames: readonly Buffer[]) {
      if (fail) throw new DisklessError('NET_SEND_FAILED', 'no', { sent: fail.at });
      calls.push(`many ${frames.map((f) => f[0]).join(',')}`);
    },
  };
}

test('FrameOutbox: frames pushed in one turn leave in one sendMany, in order, after the turn; callbacks run after sending', async () => {
  const s = socket();
  const done: number[] = [];
  const out = new FrameOutbox(s, () => assert.fail('no error expected'));
  for (let i = 1; i <= 3; i++) out.push(Buffer.from([i]), () => done.push(i));
  assert.deepEqual(s.calls, [], 'nothing sent synchronously');
  await Promise.resolve();
  assert.deepEqual(s.calls, ['many 1,2,3']);
  assert.deepEqual(done, [1, 2, 3]);
  out.push(Buffer.from([9]));
  await Promise.resolve();
  assert.deepEqual(s.calls, ['many 1,2,3', 'send 9'], 'a lone frame takes plain send');
});

test('FrameOutbox: a failed batch reports the frames lost and still releases every frame', async () => {
  const s = socket({ at: 2 });
  const errors: number[] = [];
  let released = 0;
  const out = new FrameOutbox(s, (_err, lost) => errors.push(lost));
  for (let i = 0; i < 5; i++) out.push(Buffer.from([i]), () => released++);
  await Promise.resolve();
  assert.deepEqual(errors, [3]);
  assert.equal(released, 5);
});

/**
 * The pure transfer state machine, without sockets: single steps, then whole transfers
 * against a model RFC 7440 client over a simulated lossy network with a virtual clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng } from '../../../test/support/mutate.js';
import { TftpTransfer, type TransferAction, type TransferPlan } from './tftp-transfer.js';

const plan = (p: Partial<TransferPlan> = {}): TransferPlan => ({ size: 10 * 512, blockSize: 512, windowSize: 1, optionAck: false, timeoutMs: 1000, retries: 5, ...p });
const data = (first: number, last: number, retransmit = false): TransferAction => ({ kind: 'send-data', first, last, retransmit });

test('without options the first DATA goes out at once (RFC 2347: no OACK)', () => {
  const t = new TftpTransfer(plan());
  assert.deepEqual(t.start(), data(1, 1));
  assert.deepEqual(t.start(), { kind: 'none' }, 'start is idempotent');
});

test('with options: OACK, then ACK 0 starts the data; any other ACK is stale', () => {
  const t = new TftpTransfer(plan({ optionAck: true, windowSize: 4 }));
  assert.deepEqual(t.start(), { kind: 'send-oack' });
  assert.deepEqual(t.onAck(3), { kind: 'none' });
  assert.equal(t.lastVerdict, 'stale');
  assert.deepEqual(t.onAck(0), data(1, 4));
  assert.equal(t.lastVerdict, 'option-ack');
});

test('block count: a size that is a multiple of blksize ends with an empty block; an empty file is one empty block', () => {
  assert.equal(new TftpTransfer(plan({ size: 1536 })).totalBlocks, 4);
  assert.equal(new TftpTransfer(plan({ size: 1537 })).totalBlocks, 4);
  assert.equal(new TftpTransfer(plan({ size: 0 })).totalBlocks, 1);
  const t = new TftpTransfer(plan({ size: 1536 }));
  assert.equal(t.blockLength(3), 512);
  assert.equal(t.blockLength(4), 0);
  const empty = new TftpTransfer(plan({ size: 0 }));
  assert.deepEqual(empty.start(), data(1, 1));
  assert.deepEqual(empty.onAck(1), { kind: 'done' });
  assert.ok(empty.finished);
  assert.deepEqual(empty.onAck(1), { kind: 'none' });
});

test('windowing: the window restarts right after the highest ACK (RFC 7440)', () => {
  const t = new TftpTransfer(plan({ windowSize: 4 }));
  assert.deepEqual(t.start(), data(1, 4));
  assert.deepEqual(t.onAck(2), data(3, 6), 'ACK in the middle of a window: resend from the gap');
  assert.deepEqual(t.onAck(6), data(7, 10));
  assert.deepEqual(t.onAck(9), data(10, 11));
  assert.deepEqual(t.onAck(11), { kind: 'done' });
});

test('duplicate ACKs never cause a resend (Sorcerer\'s Apprentice, RFC 1123 §4.2.3.1)', () => {
  const t = new TftpTransfer(plan());
  t.start();
  assert.deepEqual(t.onAck(1), data(2, 2));
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(t.onAck(1), { kind: 'none' });
    assert.equal(t.lastVerdict, 'duplicate');
  }
  assert.deepEqual(t.onAck(2), data(3, 3));
});

test('windowed duplicate ACKs are ignored too; the timer resends the window', () => {
  const t = new TftpTransfer(plan({ windowSize: 4 }));
  t.start();
  assert.deepEqual(t.onAck(4), data(5, 8));
  for (let i = 0; i < 3; i++) assert.deepEqual(t.onAck(4), { kind: 'none' });
  assert.deepEqual(t.onTimeout(), data(5, 8, true));
  assert.deepEqual(t.onAck(8), data(9, 11));
});

test('ACKs outside [last ACKed, last sent] are stale', () => {
  const t = new TftpTransfer(plan({ windowSize: 4 }));
  t.start();
  assert.deepEqual(t.onAck(5), { kind: 'none' }, 'never sent');
  assert.equal(t.lastVerdict, 'stale');
  assert.deepEqual(t.onAck(60000), { kind: 'none' });
  assert.deepEqual(t.onAck(3), data(4, 7));
  assert.deepEqual(t.onAck(2), { kind: 'none' }, 'older than the last ACK');
  assert.equal(t.lastVerdict, 'stale');
});

test('retransmission: exponential backoff up to `retries`, then abort; progress resets it', () => {
  const t = new TftpTransfer(plan({ retries: 3, timeoutMs: 500 }));
  t.start();
  assert.equal(t.timeoutMs, 500);
  assert.deepEqual(t.onTimeout(), data(1, 1, true));
  assert.equal(t.timeoutMs, 1000);
  assert.deepEqual(t.onTimeout(), data(1, 1, true));
  assert.equal(t.timeoutMs, 2000);
  assert.deepEqual(t.onAck(1), data(2, 2));
  assert.equal(t.timeoutMs, 500, 'progress resets the backoff');
  for (let i = 0; i < 3; i++) assert.equal(t.onTimeout().kind, 'send-data');
  assert.deepEqual(t.onTimeout(), { kind: 'abort', reason: 'timeout' });
  assert.ok(t.finished);
  assert.deepEqual(t.onAck(2), { kind: 'none' });
});

test('backoff is capped by maxTimeoutMs; the OACK is what a timeout resends before ACK 0', () => {
  const t = new TftpTransfer(plan({ optionAck: true, retries: 10, timeoutMs: 1000, maxTimeoutMs: 3000 }));
  t.start();
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) {
    assert.deepEqual(t.onTimeout(), { kind: 'send-oack' });
    seen.push(t.timeoutMs);
  }
  assert.deepEqual(seen, [2000, 3000, 3000, 3000]);
});

test('block numbers roll over past 65535 to 0 (> 65535-block transfer)', () => {
  const blocks = 70_000;
  const t = new TftpTransfer(plan({ size: blocks * 512 + 100, windowSize: 1 }));
  let action = t.start();
  let wireSent: number[] = [];
  while (action.kind === 'send-data') {
    wireSent.push(TftpTransfer.wireBlock(action.first));
    action = t.onAck(TftpTransfer.wireBlock(action.last));
  }
  assert.deepEqual(action, { kind: 'done' });
  assert.equal(wireSent.length, blocks + 1);
  assert.deepEqual(wireSent.slice(65533, 65539), [65534, 65535, 0, 1, 2, 3]);
  wireSent = [];
});

/**
 * Runs a whole transfer: the machine against a model RFC 7440 client. `loss(kind, n)` says
 * whether the n-th packet of that kind is lost. Returns what the client assembled and stats.
 */
function simulate(p: TransferPlan, loss: (kind: 'data' | 'ack', n: number) => boolean, duplicateAcks = false) {
  const t = new TftpTransfer(p);
  const received: number[] = []; // absolute block numbers, in order
  let expectedAbs = 1;
  let dataSent = 0;
  let dataN = 0;
  let ackN = 0;
  let clock = 0;
  let actions = 0;
  let queue: TransferAction[] = [t.start()];
  let result: TransferAction | undefined;
  while (queue.length > 0 && actions++ < 1_000_000) {
    const action = queue.shift()!;
    if (action.kind === 'done' || action.kind === 'abort') {
      result = action;
      break;
    }
    const acks: number[] = [];
    if (action.kind === 'send-oack') {
      if (!loss('data', dataN++)) acks.push(0);
    } else if (action.kind === 'send-data') {
      let sinceAck = 0;
      let gap = false;
      for (let b = action.first; b <= action.last; b++) {
        dataSent++;
        if (loss('data', dataN++)) continue;
        const wire = TftpTransfer.wireBlock(b);
        if (wire === TftpTransfer.wireBlock(expectedAbs) && !gap) {
          received.push(expectedAbs);
          expectedAbs++;
          sinceAck++;
          const last = t.blockLength(b) < p.blockSize;
          if (sinceAck === p.windowSize || last) {
            acks.push(TftpTransfer.wireBlock(expectedAbs - 1));
            sinceAck = 0;
          }
        } else if (!gap) {
          gap = true; // RFC 7440 §4: on a gap, ACK the last block received in order
          acks.push(TftpTransfer.wireBlock(expectedAbs - 1));
        }
      }
    }
    const next: TransferAction[] = [];
    for (const a of duplicateAcks ? acks.flatMap((x) => [x, x]) : acks) {
      if (loss('ack', ackN++)) continue;
      next.push(t.onAck(a));
    }
    const live: TransferAction[] = next.filter((a) => a.kind !== 'none');
    if (live.length === 0 && !t.finished) {
      clock += t.timeoutMs;
      live.push(t.onTimeout());
    }
    queue = queue.concat(live);
  }
  return { result, received, dataSent, clock };
}

test('lossless transfers at several windows deliver every block once, in order', () => {
  for (const windowSize of [1, 4, 16, 64]) {
    const p = plan({ size: 300 * 512 + 7, windowSize, optionAck: true });
    const r = simulate(p, () => false);
    assert.deepEqual(r.result, { kind: 'done' });
    assert.equal(r.received.length, 301);
    assert.equal(r.dataSent, 301, `W=${windowSize}: no block sent twice`);
    assert.equal(r.clock, 0, 'no timeout');
  }
});

test('duplicated ACKs do not multiply the traffic (no Sorcerer\'s Apprentice)', () => {
  for (const windowSize of [1, 8]) {
    const r = simulate(plan({ size: 200 * 512, windowSize }), () => false, true);
    assert.deepEqual(r.result, { kind: 'done' });
    assert.equal(r.dataSent, 201, `W=${windowSize}`);
  }
});

test('10% random loss of DATA and ACKs: the file still arrives whole, with bounded retransmission', () => {
  for (const windowSize of [1, 4, 16]) {
    const rand = prng(windowSize * 7919);
    const p = plan({ size: 500 * 512 + 3, windowSize, retries: 50 });
    const r = simulate(p, () => rand() < 0.1);
    assert.deepEqual(r.result, { kind: 'done' }, `W=${windowSize}`);
    assert.deepEqual(r.received, Array.from({ length: 501 }, (_, i) => i + 1));
    assert.ok(r.dataSent < 501 * 4, `W=${windowSize}: sent ${r.dataSent}`);
  }
});

test('a client that vanishes makes the transfer abort after `retries` backoffs (1+2+4+8+16+32 s)', () => {
  const r = simulate(plan({ retries: 5, timeoutMs: 1000 }), (kind) => kind === 'ack');
  assert.deepEqual(r.result, { kind: 'abort', reason: 'timeout' });
  assert.equal(r.clock, 1000 + 2000 + 4000 + 8000 + 16000 + 32000);
});

test('windowed transfer across the rollover keeps order (W=64, 70000 blocks)', () => {
  const r = simulate(plan({ size: 70_000 * 512, windowSize: 64 }), () => false);
  assert.deepEqual(r.result, { kind: 'done' });
  assert.equal(r.received.length, 70_001);
  assert.equal(r.received[65535], 65536);
});

/**
 * TftpServer on both transfer transports: the native socket of the addon (with its staged
 * window) and the node:dgram fallback. The same transfers must give the same bytes, the same
 * retransmissions and the same metrics on each: lock-step, windowed, a block lost in the
 * middle of a window (the client ACKs the gap, the server resends from it), the first block
 * of a window lost (only the timer resends), duplicated ACKs (never a resend), a client that
 * vanishes, a client ERROR. Also: busy-polling catches a fast lock-step client (atftp) and is
 * off at 0; which transport 'auto' picks; bad option values.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawFetch, readRequest } from '../../../test/support/tftp-client.js';
import { isDisklessError } from '../../errors/index.js';
import { nativeUdpTransferAvailable } from '../../net/udp-transfer-socket.js';
import { silentLogger } from '../../observe/logger.js';
import { Metrics } from '../../observe/metrics.js';
import { decodeTftpPacket, encodeAck, encodeError, TftpOpcode } from '../../wire/tftp/tftp-packet.js';
import { TftpServer } from './tftp-server.js';
import type { TransferTransport } from './transfer-channel.js';

const dir = mkdtempSync(join(tmpdir(), 'dt-tftp-transport-'));
const root = join(dir, 'root');
const file = randomBytes(512 * 300 + 77);
const native = nativeUdpTransferAvailable();

before(() => {
  mkdirSync(root);
  writeFileSync(join(root, 'f'), file);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function withServer(transport: TransferTransport, o: { timeoutMs?: number; retries?: number }, body: (s: TftpServer, m: Metrics) => Promise<void>): Promise<void> {
  const metrics = new Metrics();
  const s = new TftpServer({ root, address: '127.0.0.1', port: 0, timeoutMs: o.timeoutMs ?? 150, retries: o.retries ?? 3, transport, log: silentLogger(), metrics });
  await s.start();
  try {
    assert.equal(s.transport, transport);
    await body(s, metrics);
  } finally {
    await s.stop();
  }
}

interface LossyResult {
  readonly data: Buffer;
  /** DATA packets received per absolute block. */
  readonly copies: Map<number, number>;
}

/**
 * An RFC 7440 client (blksize 512) that loses the first copy of each block in `lose`, ACKs the
 * last in-order block when it sees a gap (like atftp), and sends every ACK `ackCopies` times.
 */
function lossyFetch(port: number, windowSize: number, lose: ReadonlySet<number>, ackCopies = 1): Promise<LossyResult> {
  const socket = createSocket('udp4');
  return new Promise<LossyResult>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const copies = new Map<number, number>();
    const lost = new Set<number>();
    let expected = 1;
    let inWindow = 0;
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`lossy fetch stalled at block ${expected}`));
    }, 8000);
    socket.on('message', (msg, rinfo) => {
      const p = decodeTftpPacket(msg);
      const ack = (n: number, then?: () => void) => {
        for (let i = 0; i < ackCopies; i++) socket.send(encodeAck(n & 0xffff), rinfo.port, rinfo.address, i === ackCopies - 1 ? then : undefined);
      };
      if (p.opcode === TftpOpcode.optionAck) return ack(0);
      if (p.opcode !== TftpOpcode.data) return;
      // Absolute number of this block: the one nearest to what we expect.
      const abs = expected - 1 + ((p.block - ((expected - 1) & 0xffff) + 0x10000) & 0xffff);
      copies.set(abs, (copies.get(abs) ?? 0) + 1);
      if (lose.has(abs) && !lost.has(abs)) {
        lost.add(abs);
        return;
      }
      if (abs !== expected) {
        if (abs > expected) {
          // A gap: say where it starts; the server's next window starts there.
          inWindow = 0;
          ack(expected - 1);
        }
        return;
      }
      chunks.push(Buffer.from(p.data));
      expected++;
      inWindow++;
      const last = p.data.length < 512;
      if (last) {
        clearTimeout(timer);
        // Close only once the last ACK has left, or the server never hears it.
        ack(expected - 1, () => {
          socket.close();
          resolve({ data: Buffer.concat(chunks), copies });
        });
      } else if (inWindow === windowSize) {
        inWindow = 0;
        ack(expected - 1);
      }
    });
    socket.bind(0, '127.0.0.1', () => socket.send(readRequest('f', { blksize: '512', windowsize: String(windowSize) }), port, '127.0.0.1'));
  });
}

const transports: TransferTransport[] = ['native', 'dgram'];

for (const transport of transports) {

  test(`${transport}: lock-step and windowed transfers, byte for byte, every block sent once`, async () => {
    await withServer(transport, {}, async (s, m) => {
      for (const w of [1, 4, 16]) {
        const r = await lossyFetch(s.port, w, new Set());
        assert.deepEqual(r.data, file, `W=${w}`);
        assert.ok([...r.copies.values()].every((c) => c === 1), `W=${w}: no block twice`);
      }
      await waitFor(() => s.activeTransfers === 0);
      assert.equal(m.value('diskless_tftp_blocks_sent_total'), 3 * 301);
      assert.equal(m.value('diskless_tftp_blocks_retransmitted_total'), 0);
      assert.equal(m.value('diskless_tftp_dropped_total', { reason: 'stage_mismatch' }), 0);
      const raw = await rawFetch(readRequest('f'), { port: s.port });
      assert.deepEqual(raw.data, file, 'no options: RFC 1350 lock-step, no OACK');
    });
  });

  test(`${transport}: a block lost mid-window is resent from the gap without waiting for the timer`, async () => {
    await withServer(transport, { timeoutMs: 5000 }, async (s, m) => {
      const started = Date.now();
      // Windows run 1-8, 5-12 (after the gap at 5), ..., 101-108, 102-109 (gap at 102), ...,
      // 150-157, 153-160: each lost block is inside a window, never its first block.
      const r = await lossyFetch(s.port, 8, new Set([5, 102, 153]));
      assert.deepEqual(r.data, file);
      assert.ok(Date.now() - started < 2000, 'the gap ACKs drove the resends, not the 5 s timer');
      for (const b of [5, 102, 153]) assert.equal(r.copies.get(b), 2, `block ${b} resent once`);
      await waitFor(() => s.activeTransfers === 0);
      assert.equal(m.value('diskless_tftp_blocks_retransmitted_total'), 0, 'resends after a gap ACK are new windows, not timeouts');
      assert.equal(m.value('diskless_tftp_transfers_total', { result: 'complete' }), 1);
    });
  });

  test(`${transport}: the first block of a window lost waits for the timer; duplicate ACKs never resend`, async () => {
    await withServer(transport, { timeoutMs: 100 }, async (s, m) => {
      const r = await lossyFetch(s.port, 4, new Set([9]), 3);
      assert.deepEqual(r.data, file);
      assert.equal(r.copies.get(9), 2);
      assert.ok(m.value('diskless_tftp_blocks_retransmitted_total') >= 4, 'the window of block 9 was resent by the timer');
      assert.ok(m.value('diskless_tftp_dropped_total', { reason: 'duplicate_ack' }) >= 2 * 75, 'each ACK came three times');
      const resent = [...r.copies.entries()].filter(([b, c]) => c > 1 && (b < 9 || b > 12)).map(([b]) => b);
      assert.deepEqual(resent, [], 'no block outside the lost window went twice');
    });
  });

  test(`${transport}: a client that vanishes or sends ERROR ends its transfer`, async () => {
    await withServer(transport, { timeoutMs: 100, retries: 1 }, async (s, m) => {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      await new Promise<void>((resolve) => {
        sock.once('message', (_msg, rinfo) => sock.send(encodeError(0, 'cancelled'), rinfo.port, rinfo.address, () => resolve()));
        sock.send(readRequest('f', { blksize: '512', windowsize: '4' }), s.port, '127.0.0.1');
      });
      await waitFor(() => s.activeTransfers === 0);
      assert.equal(m.value('diskless_tftp_transfers_total', { result: 'client_error' }), 1);
      // Now one that closes its port after the first window: ICMP port unreachable or the timer ends it.
      await new Promise<void>((resolve) => {
        sock.once('message', () => sock.close(() => resolve()));
        sock.send(readRequest('f', { blksize: '512', windowsize: '4' }), s.port, '127.0.0.1');
      });
      await waitFor(() => s.activeTransfers === 0, 3000);
      const gone = m.value('diskless_tftp_transfers_total', { result: 'client_gone' }) + m.value('diskless_tftp_transfers_total', { result: 'timeout' });
      assert.equal(gone, 1);
    });
  });
}

test('busy-poll (native): a lock-step client that answers fast is caught spinning; 0 turns it off', async () => {
  const big = randomBytes(1468 * 1500 + 3);
  writeFileSync(join(root, 'big'), big);
  const fetchBig = (port: number) => new Promise<void>((resolve, reject) => {
    execFile('atftp', ['--option', 'blksize 1468', '--get', '-r', 'big', '-l', join(dir, 'big.out'), '127.0.0.1', String(port)], { timeout: 30_000 }, (err) => (err ? reject(err) : resolve()));
  });
  for (const busyPollMicros of [1000, 0]) {
    const metrics = new Metrics();
    const s = new TftpServer({ root, address: '127.0.0.1', port: 0, transport: 'native', busyPollMicros, log: silentLogger(), metrics });
    await s.start();
    try {
      await fetchBig(s.port);
      assert.deepEqual(readFileSync(join(dir, 'big.out')), big);
      await waitFor(() => s.activeTransfers === 0);
      const hits = metrics.value('diskless_tftp_busy_poll_total', { result: 'hit' });
      const misses = metrics.value('diskless_tftp_busy_poll_total', { result: 'miss' });
      if (busyPollMicros > 0) assert.ok(hits > 0, `hits ${hits}, misses ${misses}`);
      else assert.equal(hits + misses, 0);
    } finally {
      await s.stop();
    }
  }
  assert.throws(() => new TftpServer({ root, busyPollMicros: 1001, log: silentLogger(), metrics: new Metrics() }), (e: unknown) => isDisklessError(e, 'CONFIG_INVALID') && e.data.field === 'tftp.busyPollMicros');
});

test("transport 'auto' picks the native socket when the addon is built; a bad value is CONFIG_INVALID", async () => {
  const s = new TftpServer({ root, port: 0, log: silentLogger(), metrics: new Metrics() });
  assert.equal(native, true, 'make builds the native addon');
  assert.equal(s.transport, 'native');
  assert.throws(
    () => new TftpServer({ root, port: 0, transport: 'raw' as never, log: silentLogger(), metrics: new Metrics() }),
    (e: unknown) => isDisklessError(e, 'CONFIG_INVALID') && e.data.field === 'tftp.transport',
  );
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

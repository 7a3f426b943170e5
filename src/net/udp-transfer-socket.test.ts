/**
 * The addon's TFTP transfer socket against a node:dgram peer on loopback: connected receive
 * (ACK as a block number, other datagrams whole, strangers dropped by the kernel), batched
 * send in order, the staged window (fires once, on exactly its ACK, before JS), writable
 * notification, busy-poll misses backing off, the peer going away (ECONNREFUSED), argument
 * errors, close twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { isDisklessError } from '../errors/index.js';
import { nativeUdpTransferAvailable, openUdpTransferSocket, type UdpTransferHandlers, type UdpTransferSocket } from './udp-transfer-socket.js';


interface Peer {
  readonly socket: Socket;
  readonly port: number;
  /** Datagrams received so far. */
  readonly got: Buffer[];
  /** Resolves when `count` datagrams have arrived in total. */
  waitFor(count: number): Promise<Buffer[]>;
}

async function peer(): Promise<Peer> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const got: Buffer[] = [];
  const waiters: Array<{ count: number; resolve: (b: Buffer[]) => void }> = [];
  socket.on('message', (msg) => {
    got.push(msg);
    for (const w of waiters.filter((x) => got.length >= x.count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(got);
    }
  });
  return {
    socket,
    port: socket.address().port,
    got,
    waitFor: (count) => (got.length >= count ? Promise.resolve(got) : new Promise((resolve) => waiters.push({ count, resolve }))),
  };
}

/** Handlers that record everything. */
function recorder(): UdpTransferHandlers & { acks: Array<[number, number]>; packets: Buffer[]; errors: Error[]; next(): Promise<void> } {
  let wake: (() => void) | undefined;
  const r = {
    acks: [] as Array<[number, number]>,
    packets: [] as Buffer[],
    errors: [] as Error[],
    ack(block: number, sent: number) {
      r.acks.push([block, sent]);
      wake?.();
    },
    packet(d: Buffer) {
      r.packets.push(d);
      wake?.();
    },
    error(e: Error) {
      r.errors.push(e);
      wake?.();
    },
    next: () => new Promise<void>((resolve) => (wake = resolve)),
  };
  return r;
}

const ack = (n: number) => Buffer.from([0, 4, n >> 8, n & 0xff]);
const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

async function pair(): Promise<{ p: Peer; s: UdpTransferSocket; h: ReturnType<typeof recorder> }> {
  const p = await peer();
  const s = openUdpTransferSocket({ bindAddress: '127.0.0.1', peerAddress: '127.0.0.1', peerPort: p.port });
  const h = recorder();
  s.start(h);
  return { p, s, h };
}

test('receives ACKs as block numbers and other datagrams whole; sends a batch in order', async () => {
  const { p, s, h } = await pair();
  try {
    assert.ok(s.localPort > 0 && s.localPort !== p.port);
    p.socket.send(ack(0x1234), s.localPort, '127.0.0.1');
    p.socket.send(Buffer.from([0, 5, 0, 0, 0x68, 0x69, 0]), s.localPort, '127.0.0.1');
    p.socket.send(Buffer.from([0, 4, 1]), s.localPort, '127.0.0.1'); // too short for an ACK
    await until(() => h.acks.length === 1 && h.packets.length === 2);
    assert.deepEqual(h.acks, [[0x1234, -1]]);
    assert.deepEqual(h.packets, [Buffer.from([0, 5, 0, 0, 0x68, 0x69, 0]), Buffer.from([0, 4, 1])]);
    const packets = Array.from({ length: 150 }, (_, i) => Buffer.from([0, 3, i >> 8, i & 0xff, ...Buffer.alloc(i % 7, i)]));
    assert.equal(s.sendBatch(packets, 150), 150);
    assert.equal(s.sendBatch(packets, 0), 0);
    assert.equal(s.send(Buffer.from('one')), true);
    const got = await p.waitFor(151);
    assert.deepEqual(got.slice(0, 150), packets);
    assert.equal(got[150]!.toString(), 'one');
  } finally {
    s.close();
    p.socket.close();
  }
});

test('datagrams from another port never reach a connected transfer socket', async () => {
  const { p, s, h } = await pair();
  const stranger = await peer();
  try {
    stranger.socket.send(ack(7), s.localPort, '127.0.0.1');
    p.socket.send(ack(8), s.localPort, '127.0.0.1');
    await until(() => h.acks.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(h.acks, [[8, -1]]);
  } finally {
    s.close();
    p.socket.close();
    stranger.socket.close();
  }
});

test('a staged window leaves on exactly its ACK, once, and the ACK reports how many left', async () => {
  const { p, s, h } = await pair();
  try {
    const window = [Buffer.from('w1'), Buffer.from('w2'), Buffer.from('w3')];
    s.stage(5, window, 3);
    p.socket.send(ack(4), s.localPort, '127.0.0.1');
    await until(() => h.acks.length === 1);
    assert.deepEqual(h.acks[0], [4, -1], 'another ACK does not release it');
    assert.equal(p.got.length, 0);
    p.socket.send(ack(5), s.localPort, '127.0.0.1');
    await until(() => h.acks.length === 2);
    assert.deepEqual(h.acks[1], [5, 3]);
    assert.deepEqual((await p.waitFor(3)).map(String), ['w1', 'w2', 'w3']);
    p.socket.send(ack(5), s.localPort, '127.0.0.1');
    await until(() => h.acks.length === 3);
    assert.deepEqual(h.acks[2], [5, -1], 'one-shot: the duplicate finds it cleared');
    // Replaced, then cleared: nothing leaves.
    s.stage(9, window, 1);
    s.stage(10, window, 2);
    s.stage(-1, window, 0);
    p.socket.send(ack(10), s.localPort, '127.0.0.1');
    await until(() => h.acks.length === 4);
    assert.deepEqual(h.acks[3], [10, -1]);
    // A single staged datagram (windowsize 1 path) and block number 0 after a rollover.
    s.stage(0, [Buffer.from('after-rollover')], 1);
    p.socket.send(ack(0), s.localPort, '127.0.0.1');
    await until(() => h.acks.length === 5);
    assert.deepEqual(h.acks[4], [0, 1]);
    assert.equal(String((await p.waitFor(4))[3]), 'after-rollover');
  } finally {
    s.close();
    p.socket.close();
  }
});

test('busy-poll: a client that never answers in time costs misses that back off (skip 2, 4, 8...)', async () => {
  const { p, s, h } = await pair();
  try {
    s.stage(77, [Buffer.from('never released')], 1, 200);
    // Each datagram is a separate wake-up; after handling it the socket spins 200 µs for ACK 77
    // (which never comes) unless it is skipping after a miss: misses at wake-ups 1, 4 and 9.
    for (let i = 0; i < 12; i++) {
      p.socket.send(Buffer.from([0, 5, 0, 0, 0]), s.localPort, '127.0.0.1');
      await until(() => h.packets.length === i + 1);
      await new Promise((r) => setTimeout(r, 15));
    }
    const { spinHits, spinMisses } = s.statistics();
    assert.equal(spinHits, 0);
    assert.ok(spinMisses >= 2 && spinMisses <= 3, `misses ${spinMisses}`);
    s.stage(-1, [], 0);
    assert.equal(p.got.length, 0, 'the staged window never left');
  } finally {
    s.close();
    p.socket.close();
  }
  assert.deepEqual(Object.keys(s.statistics()).sort(), ['spinHits', 'spinMisses'], 'statistics after close');
});

test('whenWritable calls back once the socket can send', async () => {
  const { p, s } = await pair();
  try {
    await new Promise<void>((resolve) => s.whenWritable(resolve));
  } finally {
    s.close();
    p.socket.close();
  }
});

test('a peer that went away: ECONNREFUSED as a NET_SEND_FAILED, from receive or send', async () => {
  const { p, s, h } = await pair();
  try {
    await new Promise<void>((r) => p.socket.close(r));
    const errorArrives = h.next();
    s.send(Buffer.from('anyone?'));
    // The ICMP port unreachable comes back as a pending socket error: the poll reports it.
    await Promise.race([errorArrives, new Promise((r) => setTimeout(r, 1000))]);
    let error: unknown = h.errors[0];
    if (error === undefined) {
      try {
        s.sendBatch([Buffer.from('a'), Buffer.from('b')], 2);
      } catch (err) {
        error = err;
      }
    }
    assert.ok(isDisklessError(error, 'NET_SEND_FAILED'), String(error));
    assert.equal((error as { data: Record<string, unknown> }).data.errno, 'ECONNREFUSED');
  } finally {
    s.close();
  }
});

test('close is idempotent; use after close is NET_SOCKET_CLOSED; start twice is refused', async () => {
  const { p, s, h } = await pair();
  assert.throws(() => s.start(h), (e: unknown) => isDisklessError(e, 'NET_INVALID_OPTION'));
  s.close();
  s.close();
  for (const use of [() => s.send(Buffer.from('x')), () => s.sendBatch([], 0), () => s.stage(1, [], 0), () => s.stage(1, [], 0, 5), () => s.whenWritable(() => undefined), () => s.start(h)]) {
    assert.throws(use, (e: unknown) => isDisklessError(e, 'NET_SOCKET_CLOSED'));
  }
  // Closed inside its own ACK handler: the rest of the batch is not delivered, nothing crashes.
  const q = await peer();
  const t = openUdpTransferSocket({ bindAddress: '127.0.0.1', peerAddress: '127.0.0.1', peerPort: q.port });
  const seen: number[] = [];
  t.start({ ack: (b) => (seen.push(b), t.close()), packet: () => undefined, error: () => undefined });
  for (let i = 0; i < 5; i++) q.socket.send(ack(i), t.localPort, '127.0.0.1');
  await until(() => seen.length >= 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, [0]);
  p.socket.close();
  q.socket.close();
});

test('bad options are NET_INVALID_OPTION with the field; a bind that fails is NET_SEND_FAILED', async () => {
  const bad = [
    [{ bindAddress: 'localhost', peerAddress: '127.0.0.1', peerPort: 1 }, 'bindAddress'],
    [{ bindAddress: '127.0.0.1', peerAddress: '10.0.0.300', peerPort: 1 }, 'peerAddress'],
    [{ bindAddress: '127.0.0.1', peerAddress: '127.0.0.1', peerPort: 0 }, 'peerPort'],
    [{ bindAddress: '127.0.0.1', peerAddress: '127.0.0.1', peerPort: 65536 }, 'peerPort'],
    [{ bindAddress: '::1', peerAddress: '127.0.0.1', peerPort: 69 }, 'bindAddress'],
  ] as const;
  for (const [options, field] of bad) {
    assert.throws(() => openUdpTransferSocket(options), (e: unknown) => isDisklessError(e, 'NET_INVALID_OPTION') && e.data.field === field, JSON.stringify(options));
  }
  // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails with EADDRNOTAVAIL.
  assert.throws(
    () => openUdpTransferSocket({ bindAddress: '192.0.2.1', peerAddress: '192.0.2.2', peerPort: 69 }),
    (e: unknown) => isDisklessError(e, 'NET_SEND_FAILED') && e.data.errno === 'EADDRNOTAVAIL',
  );
});

test('IPv6: a transfer socket on ::1', async () => {
  const p6 = createSocket('udp6');
  await new Promise<void>((r) => p6.bind(0, '::1', r));
  const s = openUdpTransferSocket({ bindAddress: '::', peerAddress: '::1', peerPort: p6.address().port });
  const h = recorder();
  s.start(h);
  try {
    const got = new Promise<Buffer>((r) => p6.once('message', r));
    assert.equal(s.sendBatch([Buffer.from('v6')], 1), 1);
    assert.equal(String(await got), 'v6');
    p6.send(ack(3), s.localPort, '::1');
    await until(() => h.acks.length === 1);
    assert.deepEqual(h.acks[0], [3, -1]);
  } finally {
    s.close();
    p6.close();
  }
});

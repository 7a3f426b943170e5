/**
 * The raw-socket addon on a real veth pair: one end here (root namespace of this test
 * process), the other in namespace dn-raw-<pid> driven by test/support/raw-peer.ts. Needs root.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { isDisklessError } from '../errors/index.js';
import { createNamespace, createVethPair, deleteNamespace, execIn, ip } from '../lab/netns.js';
import { startRawPeer, type RawPeer } from '../../test/support/raw-peer-client.js';
import { matchAll } from './bpf.js';
import { interfaceInfo, openRawSocket } from './open-raw-socket.js';
import type { RawSocket } from './raw-socket.js';

/** IEEE 802 "local experimental" EtherType: no kernel protocol handles it. */
const EXPERIMENTAL = 0x88b5;
const ETH_P_ALL = 0x0003;

const tag = String(process.pid % 100000);
const ns = `dn-raw-${tag}`;
const local = `dn-a${tag}`;
const remote = `dn-b${tag}`;

function frame(dst: string, src: string, etherType: number, payload: Buffer): Buffer {
  const f = Buffer.alloc(Math.max(60, 14 + payload.length));
  Buffer.from(dst, 'hex').copy(f, 0);
  Buffer.from(src, 'hex').copy(f, 6);
  f.writeUInt16BE(etherType, 12);
  payload.copy(f, 14);
  return f;
}

/** Collects frames from `socket` until `n` arrived or `ms` passed. */
function collect(socket: RawSocket, n: number, ms: number): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    const timer = setTimeout(() => resolve(got), ms);
    socket.onFrame((f) => {
      got.push(f);
      if (got.length >= n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('openRawSocket on a veth pair', { timeout: 120_000 }, () => {
  let peer: RawPeer;
  let localMac: string;

  before(async () => {
    await deleteNamespace(ns);
    await ip('link', 'del', local).catch(() => undefined);
    await createNamespace(ns);
    await createVethPair(local, remote, undefined, ns);
    // keep the kernels' IPv6 autoconfiguration off these links: only our frames on the wire
    await ip('link', 'set', local, 'mtu', '1400');
    writeSysctl(`net/ipv6/conf/${local}/disable_ipv6`, '1');
    await execIn(ns, 'sysctl', ['-qw', `net.ipv6.conf.${remote}.disable_ipv6=1`]);
    peer = await startRawPeer(ns, remote, EXPERIMENTAL);
    localMac = interfaceInfo(local).mac.toString('hex');
  });

  after(async () => {
    await peer?.stop();
    await deleteNamespace(ns);
    await ip('link', 'del', local).catch(() => undefined);
  });

  test('interfaceInfo reports the kernel index, MAC and MTU', () => {
    const info = interfaceInfo(local);
    assert.equal(info.ifindex, Number(readFileSync(`/sys/class/net/${local}/ifindex`, 'utf8')));
    assert.equal(info.mac.toString('hex'), readFileSync(`/sys/class/net/${local}/address`, 'utf8').trim().replace(/:/g, ''));
    assert.equal(info.mtu, 1400);
  });

  test('a missing or malformed interface name is NET_INTERFACE_NOT_FOUND', () => {
    for (const name of ['dn-nosuch0', 'x'.repeat(16), '', 'a/b']) {
      assert.throws(() => interfaceInfo(name), (e) => isDisklessError(e, 'NET_INTERFACE_NOT_FOUND'), name);
      assert.throws(() => openRawSocket({ ifname: name, etherType: EXPERIMENTAL }), (e) => isDisklessError(e, 'NET_INTERFACE_NOT_FOUND'), name);
    }
  });

  test('bad options are NET_INVALID_OPTION, including a filter the kernel rejects', () => {
    const bad = [
      { etherType: 0x10000 },
      { etherType: -1 },
      { etherType: EXPERIMENTAL, receiveBufferBytes: 1.5 },
      { etherType: EXPERIMENTAL, filter: [] },
      { etherType: EXPERIMENTAL, filter: [[0x06, 0, 0]] },
      { etherType: EXPERIMENTAL, filter: [[0x06, 256, 0, 0]] },
      // a jump past the end: the kernel's checker refuses it
      { etherType: EXPERIMENTAL, filter: [[0x15, 5, 5, 0]] },
    ] as const;
    for (const options of bad) {
      assert.throws(() => openRawSocket({ ifname: local, ...(options as { etherType: number }) }), (e) => isDisklessError(e, 'NET_INVALID_OPTION'), JSON.stringify(options));
    }
  });

  test('frames flow both ways, byte for byte', async () => {
    const socket = openRawSocket({ ifname: local, etherType: EXPERIMENTAL });
    try {
      const toLocal = frame(localMac, peer.mac, EXPERIMENTAL, Buffer.from('hello from the peer'));
      const arriving = collect(socket, 1, 5000);
      assert.equal((await peer.request({ op: 'send', hex: toLocal.toString('hex') })).ok, true);
      const [got] = await arriving;
      assert.deepEqual(got, toLocal);

      const toPeer = frame(peer.mac, localMac, EXPERIMENTAL, Buffer.alloc(1386, 0xab));
      socket.send(toPeer);
      await until(async () => ((await peer.request({ op: 'received' })).count ?? 0) > 0, 5000);
      const r = await peer.request({ op: 'received' });
      assert.equal(r.count, 1);
      assert.equal(r.frames?.[0], toPeer.toString('hex'));
    } finally {
      socket.close();
    }
  });

  test('frames this host sends are not delivered back, even to an ETH_P_ALL socket', async () => {
    const sender = openRawSocket({ ifname: local, etherType: EXPERIMENTAL });
    const all = openRawSocket({ ifname: local, etherType: ETH_P_ALL });
    try {
      const bySender = collect(sender, 1, 700);
      const byAll = collect(all, 1, 700);
      for (let i = 0; i < 5; i++) sender.send(frame(peer.mac, localMac, EXPERIMENTAL, Buffer.from([i])));
      assert.deepEqual(await bySender, []);
      assert.deepEqual(await byAll, []);
    } finally {
      sender.close();
      all.close();
    }
  });

  test('the BPF filter decides in the kernel which frames reach JS', async () => {
    const socket = openRawSocket({ ifname: local, etherType: EXPERIMENTAL, filter: matchAll([{ size: 'b', offset: 14, value: 0x01 }]) });
    try {
      const arriving = collect(socket, 3, 1500);
      for (const first of [0x02, 0x01, 0x03, 0x01, 0xff, 0x01]) {
        await peer.request({ op: 'send', hex: frame(localMac, peer.mac, EXPERIMENTAL, Buffer.from([first, 0x55])).toString('hex') });
      }
      const got = await arriving;
      assert.equal(got.length, 3);
      for (const f of got) assert.equal(f[14], 0x01);
      assert.ok(socket.statistics!().received >= 3);
    } finally {
      socket.close();
    }
  });

  test('close is safe twice, also from inside a handler; send after close is NET_SOCKET_CLOSED', async () => {
    const socket = openRawSocket({ ifname: local, etherType: EXPERIMENTAL });
    let calls = 0;
    const closedInHandler = new Promise<void>((resolve) => {
      socket.onFrame(() => {
        calls++;
        socket.close();
        socket.close();
        resolve();
      });
    });
    const f = frame(localMac, peer.mac, EXPERIMENTAL, Buffer.from('x'));
    await peer.request({ op: 'burst', hex: f.toString('hex'), count: 10, seqOffset: 16 });
    await closedInHandler;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(calls, 1, 'no frame is delivered after close');
    assert.throws(() => socket.send(f), (e) => isDisklessError(e, 'NET_SOCKET_CLOSED'));
    socket.close();
  });

  test('a link going down is reported once through onError, and frames flow again once it is back', async () => {
    const socket = openRawSocket({ ifname: local, etherType: EXPERIMENTAL });
    try {
      const errors: Error[] = [];
      socket.onError!((e) => errors.push(e));
      socket.onFrame(() => undefined);
      await ip('link', 'set', local, 'down');
      await until(async () => errors.length > 0, 3000);
      assert.equal(errors.length, 1);
      assert.ok(isDisklessError(errors[0], 'NET_RAW_SOCKET'));
      assert.equal((errors[0] as { data?: { errno?: string } }).data?.errno, 'ENETDOWN');
      assert.throws(() => socket.send(frame(peer.mac, localMac, EXPERIMENTAL, Buffer.from('x'))), (e) => isDisklessError(e, 'NET_SEND_FAILED'));
      await ip('link', 'set', local, 'up');
      await until(async () => (await ip('-br', 'link', 'show', local)).includes('UP'), 3000);
      const arriving = collect(socket, 1, 5000);
      const f = frame(localMac, peer.mac, EXPERIMENTAL, Buffer.from('back'));
      await until(async () => {
        await peer.request({ op: 'send', hex: f.toString('hex') });
        return socket.statistics!().received > 0;
      }, 5000);
      assert.deepEqual((await arriving)[0], f);
      assert.equal(socket.statistics!().receiveErrors, 1);
    } finally {
      socket.close();
      await ip('link', 'set', local, 'up');
    }
  });

  test('a burst of 3000 frames arrives complete and in order', async (t) => {
    const socket = openRawSocket({ ifname: local, etherType: EXPERIMENTAL });
    try {
      const n = 3000;
      const arriving = collect(socket, n, 20_000);
      const template = frame(localMac, peer.mac, EXPERIMENTAL, Buffer.alloc(300));
      const started = process.hrtime.bigint();
      const r = await peer.request({ op: 'burst', hex: template.toString('hex'), count: n, seqOffset: 14 });
      assert.equal(r.sent, n);
      const got = await arriving;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      assert.equal(got.length, n, `received ${got.length} of ${n} (kernel drops ${socket.statistics!().kernelDrops})`);
      got.forEach((f, i) => assert.equal(f.readUInt32BE(14), i));
      t.diagnostic(`burst: ${n} frames in ${seconds.toFixed(3)} s`);
    } finally {
      socket.close();
    }
  });

  test('a burst of 3000 frames sent from here arrives at the peer', async () => {
    const socket = openRawSocket({ ifname: local, etherType: EXPERIMENTAL });
    try {
      const before = (await peer.request({ op: 'received' })).count ?? 0;
      const f = frame(peer.mac, localMac, EXPERIMENTAL, Buffer.alloc(300));
      for (let i = 0; i < 3000; i++) {
        f.writeUInt32BE(i, 14);
        socket.send(f);
      }
      await until(async () => ((await peer.request({ op: 'received' })).count ?? 0) - before >= 3000, 10_000);
      assert.equal(((await peer.request({ op: 'received' })).count ?? 0) - before, 3000);
    } finally {
      socket.close();
    }
  });

  test('sendMany: 1000 frames of mixed sizes in batches arrive at the peer complete and in order; a bad frame is NET_SEND_FAILED with the count sent', async () => {
    const socket = openRawSocket({ ifname: local, etherType: EXPERIMENTAL, sendBufferBytes: 4 * 1024 * 1024 });
    try {
      await peer.request({ op: 'clear' });
      const frames = Array.from({ length: 1000 }, (_, i) => {
        const f = frame(peer.mac, localMac, EXPERIMENTAL, Buffer.alloc(46 + (i % 7) * 200));
        f.writeUInt32BE(i, 14);
        return f;
      });
      for (let at = 0; at < frames.length; at += 250) socket.sendMany!(frames.slice(at, at + 250));
      await until(async () => ((await peer.request({ op: 'received' })).count ?? 0) >= 1000, 10_000);
      const r = await peer.request({ op: 'received' });
      assert.equal(r.count, 1000);
      assert.deepEqual((r.frames ?? []).map((h) => Buffer.from(h, 'hex').readUInt32BE(14)), Array.from({ length: 64 }, (_, i) => i), 'the first 64, in order');
      // a frame above the MTU fails in the kernel (EMSGSIZE) after the good one before it went out
      const tooBig = frame(peer.mac, localMac, EXPERIMENTAL, Buffer.alloc(4000));
      assert.throws(() => socket.sendMany!([frames[0]!, tooBig, frames[1]!]), (e: unknown) => isDisklessError(e, 'NET_SEND_FAILED') && e.data.sent === 1);
      assert.throws(() => openRawSocket({ ifname: local, etherType: EXPERIMENTAL, sendBufferBytes: -1 }), (e: unknown) => isDisklessError(e, 'NET_INVALID_OPTION'));
    } finally {
      socket.close();
    }
  });
});

/** Writes a sysctl of the current namespace; absent keys (no IPv6 in this kernel) are skipped. */
function writeSysctl(path: string, value: string): void {
  try {
    writeFileSync(`/proc/sys/${path}`, value);
  } catch {
    // nothing to quiet
  }
}

/**
 * RaServer on a real veth pair: the server here on one end (root namespace of this process),
 * a second host in namespace dn-ra-<pid> on the other end — test/support/raw-peer.ts, a raw
 * socket that sends solicitations and records what arrives. Needs root.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { createNamespace, createVethPair, deleteNamespace, execIn, ip } from '../../lab/netns.js';
import { interfaceInfo } from '../../net/open-raw-socket.js';
import { Metrics } from '../../observe/metrics.js';
import { silentLogger } from '../../observe/logger.js';
import { startRawPeer, type RawPeer } from '../../../test/support/raw-peer-client.js';
import { EtherType } from '../../wire/ethernet/ethernet-frame.js';
import { decodeIcmpv6Frame, encodeIcmpv6Frame, Icmpv6Type, type Icmpv6Frame } from '../../wire/icmpv6/icmpv6-message.js';
import { decodeRouterAdvertisement, encodeRouterSolicitation } from '../../wire/icmpv6/router-discovery.js';
import { formatIpv6Address, linkLocalFromMac, multicastMac, parseIpv6Address } from '../../wire/ipv6/ipv6-address.js';
import { RaServer } from './ra-server.js';

const tag = String(process.pid % 100000);
const ns = `dn-ra-${tag}`;
const local = `dn-r${tag}`;
const remote = `dn-s${tag}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RaServer on a veth pair', { timeout: 120_000 }, () => {
  let peer: RawPeer;
  let peerMac: Buffer;
  let localMac: Buffer;

  /** An RS from the peer, as a host would send it. */
  function solicitation(opts: { hopLimit?: number; type?: number } = {}): string {
    const message = encodeRouterSolicitation({ code: 0, reserved: 0, options: [{ kind: 'sourceLinkLayerAddress', address: peerMac }] });
    if (opts.type !== undefined) message[0] = opts.type;
    const allRouters = parseIpv6Address('ff02::2');
    return encodeIcmpv6Frame(multicastMac(allRouters), peerMac, { trafficClass: 0, flowLabel: 0, hopLimit: opts.hopLimit ?? 255, source: linkLocalFromMac(peerMac), destination: allRouters }, message).toString('hex');
  }

  async function received(): Promise<Icmpv6Frame[]> {
    const r = await peer.request({ op: 'received' });
    // The kernel also sends MLD reports (behind a hop-by-hop header) once the peer's interface has
    // a link-local address: only frames whose IPv6 next header is ICMPv6 (58) are ours to check.
    return (r.frames ?? []).map((h) => Buffer.from(h, 'hex')).filter((f) => f.readUInt16BE(12) === 0x86dd && f[20] === 58).map((f) => decodeIcmpv6Frame(f));
  }

  async function waitFor(predicate: (frames: Icmpv6Frame[]) => boolean, ms: number): Promise<Icmpv6Frame[]> {
    const end = Date.now() + ms;
    for (;;) {
      const frames = await received();
      if (predicate(frames) || Date.now() > end) return frames;
      await sleep(25);
    }
  }

  function server(metrics: Metrics, extra: Partial<ConstructorParameters<typeof RaServer>[0]> = {}): RaServer {
    return new RaServer({ interfaces: [local], intervalSeconds: 200, initialIntervalMs: 200, log: silentLogger(), metrics, ...extra });
  }

  before(async () => {
    await deleteNamespace(ns);
    await ip('link', 'del', local).catch(() => undefined);
    await createNamespace(ns);
    await createVethPair(local, remote, undefined, ns);
    // only our frames on this wire: neither kernel speaks IPv6 here
    writeFileSync(`/proc/sys/net/ipv6/conf/${local}/disable_ipv6`, '1');
    await execIn(ns, 'sysctl', ['-qw', `net.ipv6.conf.${remote}.disable_ipv6=1`]);
    peer = await startRawPeer(ns, remote, EtherType.ipv6);
    peerMac = Buffer.from(peer.mac, 'hex');
    localMac = interfaceInfo(local).mac;
  });

  after(async () => {
    await peer?.stop();
    await deleteNamespace(ns);
    await ip('link', 'del', local).catch(() => undefined);
  });

  test('sends 3 quick unsolicited RAs to all-nodes, lifetime 0, from the EUI-64 link-local', async () => {
    await peer.request({ op: 'clear' });
    const metrics = new Metrics();
    const ra = server(metrics);
    await ra.start();
    try {
      const frames = await waitFor((f) => f.length >= 3, 3000);
      assert.equal(frames.length, 3);
      for (const f of frames) {
        assert.equal(f.icmpv6.type, Icmpv6Type.routerAdvertisement);
        assert.equal(formatIpv6Address(f.ipv6.destination), 'ff02::1');
        assert.equal(f.destinationMac.toString('hex'), '333300000001');
        assert.equal(formatIpv6Address(f.ipv6.source), formatIpv6Address(linkLocalFromMac(localMac)));
        assert.equal(f.ipv6.hopLimit, 255);
        const body = decodeRouterAdvertisement(f.icmpv6.message);
        assert.equal(body.routerLifetime, 0);
        assert.deepEqual(body.options, [{ kind: 'sourceLinkLayerAddress', address: localMac }]);
      }
      assert.equal(metrics.value('diskless_ra_advertisements_total', { interface: local, kind: 'unsolicited' }), 3);
    } finally {
      await ra.stop();
      await ra.stop();
    }
    await peer.request({ op: 'clear' });
    await sleep(400);
    assert.equal((await received()).length, 0, 'nothing is sent after stop');
  });

  test('answers an RS at once by unicast; invalid and non-RS frames are not answered', async () => {
    const metrics = new Metrics();
    const ra = server(metrics, { initialIntervalMs: 60_000, prefix: 'fd00:99::/64' });
    await ra.start();
    try {
      await sleep(100);
      await peer.request({ op: 'clear' });
      const sent = Date.now();
      await peer.request({ op: 'send', hex: solicitation() });
      const frames = await waitFor((f) => f.length >= 1, 2000);
      const latency = Date.now() - sent;
      assert.equal(frames.length, 1);
      const [answer] = frames;
      assert.equal(answer!.destinationMac.toString('hex'), peerMac.toString('hex'));
      assert.equal(formatIpv6Address(answer!.ipv6.destination), formatIpv6Address(linkLocalFromMac(peerMac)));
      const body = decodeRouterAdvertisement(answer!.icmpv6.message);
      assert.equal(body.routerLifetime, 0);
      assert.ok(body.options.some((o) => o.kind === 'prefixInformation' && formatIpv6Address(o.prefix) === 'fd00:99::'));
      assert.ok(latency < 1000, `answered in ${latency} ms`);
      assert.equal(metrics.value('diskless_ra_solicitations_total', { interface: local }), 1);
      assert.equal(metrics.value('diskless_ra_advertisements_total', { interface: local, kind: 'solicited' }), 1);

      // the same host again within the hold time: counted, not answered
      await peer.request({ op: 'send', hex: solicitation() });
      // hop limit 64: forwarded from off-link, invalid (RFC 4861 §6.1.1)
      await peer.request({ op: 'send', hex: solicitation({ hopLimit: 64 }) });
      // a neighbor solicitation never reaches JS: the kernel filter drops it
      await peer.request({ op: 'send', hex: solicitation({ type: Icmpv6Type.neighborSolicitation }) });
      await sleep(300);
      assert.equal((await received()).length, 1);
      assert.equal(metrics.value('diskless_ra_dropped_total', { interface: local, reason: 'rate_limited' }), 1);
      assert.equal(metrics.value('diskless_ra_dropped_total', { interface: local, reason: 'hop_limit' }), 1);
      assert.equal(metrics.total('diskless_ra_dropped_total'), 2);
    } finally {
      await ra.stop();
    }
  });

  test("uses the kernel's link-local address when the interface has one", async () => {
    writeFileSync(`/proc/sys/net/ipv6/conf/${local}/addr_gen_mode`, '1');
    writeFileSync(`/proc/sys/net/ipv6/conf/${local}/disable_ipv6`, '0');
    await ip('addr', 'add', 'fe80::d15c/64', 'dev', local, 'nodad');
    const ra = server(new Metrics());
    try {
      await peer.request({ op: 'clear' });
      await ra.start();
      const frames = await waitFor((f) => f.some((x) => x.icmpv6.type === Icmpv6Type.routerAdvertisement), 2000);
      const first = frames.find((x) => x.icmpv6.type === Icmpv6Type.routerAdvertisement);
      assert.ok(first);
      assert.equal(formatIpv6Address(first.ipv6.source), 'fe80::d15c');
    } finally {
      await ra.stop();
      writeFileSync(`/proc/sys/net/ipv6/conf/${local}/disable_ipv6`, '1');
    }
  });

  test('a missing interface fails start with NET_INTERFACE_NOT_FOUND and leaves nothing open; a bad prefix fails construction', async () => {
    const ra = new RaServer({ interfaces: [local, 'dn-nosuch9'], intervalSeconds: 200, log: silentLogger(), metrics: new Metrics() });
    await assert.rejects(ra.start(), (e) => isDisklessError(e, 'NET_INTERFACE_NOT_FOUND'));
    await ra.stop();
    for (const prefix of ['fd00::1/64', 'nonsense', 'fd00::/200']) {
      assert.throws(() => new RaServer({ interfaces: [local], prefix, log: silentLogger(), metrics: new Metrics() }), (e) => isDisklessError(e, 'CONFIG_INVALID'), prefix);
    }
    assert.throws(() => new RaServer({ interfaces: [], log: silentLogger(), metrics: new Metrics() }), (e) => isDisklessError(e, 'CONFIG_INVALID'));
  });
});

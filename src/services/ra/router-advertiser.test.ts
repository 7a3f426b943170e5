import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readPcap } from '../../../test/support/pcap.js';
import { testdataPath } from '../../../test/support/testdata.js';
import { decodeIcmpv6Frame, encodeIcmpv6Frame, Icmpv6Type } from '../../wire/icmpv6/icmpv6-message.js';
import { PrefixFlag } from '../../wire/icmpv6/ndp-options.js';
import { decodeRouterAdvertisement, encodeRouterSolicitation } from '../../wire/icmpv6/router-discovery.js';
import { formatIpv6Address, linkLocalFromMac, parseIpv6Address, parseIpv6Prefix } from '../../wire/ipv6/ipv6-address.js';
import { buildRouterAdvertisementFrame, checkRouterSolicitation, RouterConstant, unsolicitedDelayMs } from './router-advertiser.js';

const icmpv6Testdata = new URL('../../wire/icmpv6/x', import.meta.url).href;
const captured = readPcap(testdataPath(icmpv6Testdata, 'ipxe-no-router.pcap')).map((r) => r.data);
const IPXE_MAC = '525400123456';
const ipxeRs = captured.find((f) => f.subarray(6, 12).toString('hex') === IPXE_MAC && decodeIcmpv6Frame(f).icmpv6.type === Icmpv6Type.routerSolicitation)!;

/** An RS frame built from parts, checksum correct. */
function rs(opts: { source?: string; hopLimit?: number; code?: number; slla?: boolean } = {}): Buffer {
  const mac = Buffer.from('020000aabbcc', 'hex');
  const message = encodeRouterSolicitation({ code: opts.code ?? 0, reserved: 0, options: opts.slla === false ? [] : [{ kind: 'sourceLinkLayerAddress', address: mac }] });
  return encodeIcmpv6Frame(Buffer.from('333300000002', 'hex'), mac, { trafficClass: 0, flowLabel: 0, hopLimit: opts.hopLimit ?? 255, source: parseIpv6Address(opts.source ?? 'fe80::aa:bbcc'), destination: parseIpv6Address('ff02::2') }, message);
}

describe('checkRouterSolicitation (RFC 4861 §6.1.1, §6.2.6)', () => {
  test("iPXE's captured RS is answered by unicast to its link-local address and MAC", () => {
    const v = checkRouterSolicitation(ipxeRs);
    assert.ok(v.ok);
    assert.equal(v.multicastReply, false);
    assert.equal(v.solicitor.mac.toString('hex'), IPXE_MAC);
    assert.equal(formatIpv6Address(v.solicitor.address), 'fe80::5054:ff:fe12:3456');
  });

  test('without an SLLA option the Ethernet source is the unicast MAC', () => {
    const v = checkRouterSolicitation(rs({ slla: false }));
    assert.ok(v.ok && !v.multicastReply);
    assert.equal(v.solicitor.mac.toString('hex'), '020000aabbcc');
  });

  test('an unspecified source is answered to all-nodes; with an SLLA it is invalid', () => {
    const v = checkRouterSolicitation(rs({ source: '::', slla: false }));
    assert.ok(v.ok && v.multicastReply);
    assert.equal(formatIpv6Address(v.solicitor.address), 'ff02::1');
    assert.equal(v.solicitor.mac.toString('hex'), '333300000001');
    assert.deepEqual(checkRouterSolicitation(rs({ source: '::' })), { ok: false, reason: 'unspecified_with_slla' });
  });

  test('each invalid field has its own drop reason', () => {
    assert.deepEqual(checkRouterSolicitation(rs({ hopLimit: 64 })), { ok: false, reason: 'hop_limit' });
    assert.deepEqual(checkRouterSolicitation(rs({ code: 1 })), { ok: false, reason: 'code' });
    const flipped = Buffer.from(ipxeRs);
    flipped[flipped.length - 1]! ^= 1;
    assert.deepEqual(checkRouterSolicitation(flipped), { ok: false, reason: 'bad_checksum' });
    assert.deepEqual(checkRouterSolicitation(ipxeRs.subarray(0, 30)), { ok: false, reason: 'truncated' });
    const v4 = Buffer.from(ipxeRs);
    v4[14] = 0x45;
    assert.deepEqual(checkRouterSolicitation(v4), { ok: false, reason: 'bad_field' });
    const ns = captured.find((f) => decodeIcmpv6Frame(f).icmpv6.type === Icmpv6Type.neighborSolicitation)!;
    assert.deepEqual(checkRouterSolicitation(ns), { ok: false, reason: 'not_solicitation' });
  });
});

describe('buildRouterAdvertisementFrame', () => {
  const mac = Buffer.from('02000000beef', 'hex');
  const linkLocal = linkLocalFromMac(mac);

  test('router lifetime 0, hop limit 255, M=O=0, SLLA, from the link-local address, checksum valid', () => {
    const to = { mac: Buffer.from(IPXE_MAC, 'hex'), address: parseIpv6Address('fe80::5054:ff:fe12:3456') };
    const frame = decodeIcmpv6Frame(buildRouterAdvertisementFrame({ mac, linkLocal }, to));
    assert.equal(frame.destinationMac.toString('hex'), IPXE_MAC);
    assert.equal(frame.sourceMac.toString('hex'), mac.toString('hex'));
    assert.equal(frame.ipv6.hopLimit, 255);
    assert.equal(formatIpv6Address(frame.ipv6.source), 'fe80::ff:fe00:beef');
    assert.equal(formatIpv6Address(frame.ipv6.destination), 'fe80::5054:ff:fe12:3456');
    const ra = decodeRouterAdvertisement(frame.icmpv6.message);
    assert.equal(ra.routerLifetime, 0);
    assert.equal(ra.flags, 0);
    assert.deepEqual(ra.options, [{ kind: 'sourceLinkLayerAddress', address: mac }]);
  });

  test('a /64 prefix goes out with L and A and the §6.2.1 lifetimes; another length without A', () => {
    const to = { mac: Buffer.from('333300000001', 'hex'), address: parseIpv6Address('ff02::1') };
    const ra = decodeRouterAdvertisement(decodeIcmpv6Frame(buildRouterAdvertisementFrame({ mac, linkLocal, prefix: parseIpv6Prefix('fd00:77::/64') }, to)).icmpv6.message);
    const p = ra.options.find((o) => o.kind === 'prefixInformation');
    assert.ok(p && p.kind === 'prefixInformation');
    assert.equal(p.flags, PrefixFlag.onLink | PrefixFlag.autonomous);
    assert.equal(formatIpv6Address(p.prefix), 'fd00:77::');
    assert.equal(p.validLifetime, RouterConstant.advValidLifetimeSeconds);
    assert.equal(p.preferredLifetime, RouterConstant.advPreferredLifetimeSeconds);
    const ra56 = decodeRouterAdvertisement(decodeIcmpv6Frame(buildRouterAdvertisementFrame({ mac, linkLocal, prefix: parseIpv6Prefix('fd00:77::/56') }, to)).icmpv6.message);
    const p56 = ra56.options.find((o) => o.kind === 'prefixInformation');
    assert.ok(p56 && p56.kind === 'prefixInformation' && p56.flags === PrefixFlag.onLink);
  });
});

test('unsolicitedDelayMs: 3 quick initial RAs, then uniform in [max(3 s, 0.33 Max), Max] (RFC 4861 §6.2.4)', () => {
  assert.equal(unsolicitedDelayMs(1, 200, 2000, () => 0.5), 2000);
  assert.equal(unsolicitedDelayMs(2, 200, 2000, () => 0.5), 2000);
  assert.equal(unsolicitedDelayMs(1, 200, 60_000, () => 0.99), RouterConstant.maxInitialRtrAdvertIntervalMs);
  assert.equal(unsolicitedDelayMs(3, 200, 2000, () => 0), 66_000);
  assert.equal(unsolicitedDelayMs(3, 200, 2000, () => 0.999999) > 199_000, true);
  assert.equal(unsolicitedDelayMs(3, 3, 2000, () => 0.7), 3000);
  assert.equal(unsolicitedDelayMs(3, 6, 2000, () => 0), 3000);
});

/**
 * Router discovery codecs against real traffic: iPXE 1.0.0 (Debian ipxe-qemu) soliciting and
 * dnsmasq answering with enable-ra, plus the Linux kernel's own RS/NS on the tap, captured with
 * tcpdump in a namespace (see ../../services/ra/README notes in the RA tests). Golden dump,
 * decode→encode round trips at every layer, and every malformed field.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isDisklessError, type ErrorCode } from '../../errors/index.js';
import { readPcap } from '../../../test/support/pcap.js';
import { testdataPath } from '../../../test/support/testdata.js';
import { formatIpv6Address, parseIpv6Address } from '../ipv6/ipv6-address.js';
import { decodeIpv6Packet } from '../ipv6/ipv6-packet.js';
import { formatIcmpv6Frame } from './format-icmpv6-frame.js';
import { decodeIcmpv6Frame, encodeIcmpv6Frame, Icmpv6Type } from './icmpv6-message.js';
import { NdpOptionType, PrefixFlag } from './ndp-options.js';
import {
  decodeRouterAdvertisement,
  decodeRouterSolicitation,
  encodeRouterAdvertisement,
  encodeRouterSolicitation,
  RouterAdvertisementFlag,
} from './router-discovery.js';

/** ipxe-dnsmasq-ra: dnsmasq with enable-ra answers; ipxe-no-router: nobody does (iPXE retries for ~8 s). */
const captures = ['ipxe-dnsmasq-ra', 'ipxe-no-router'];
const framesOf = (name: string) => readPcap(testdataPath(import.meta.url, `${name}.pcap`)).map((r) => r.data);
const frames = captures.flatMap(framesOf);
const IPXE_MAC = '525400123456';

function throwsCode(fn: () => unknown, code: ErrorCode, what: string): void {
  assert.throws(fn, (e) => isDisklessError(e, code), what);
}

describe('router discovery codecs on captured traffic', () => {
  for (const name of captures) {
    test(`${name}.pcap decodes to the checked-in readable dump ${name}.parsed`, () => {
      const golden = testdataPath(import.meta.url, `${name}.parsed`);
      const dump = framesOf(name).map((f, i) => `#${i}\n${formatIcmpv6Frame(decodeIcmpv6Frame(f))}`).join('\n\n') + '\n';
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, dump);
      assert.equal(dump, readFileSync(golden, 'utf8'));
    });
  }

  test("iPXE's router solicitation: from its EUI-64 link-local to all-routers, with its MAC", () => {
    const rs = frames.map((f) => decodeIcmpv6Frame(f)).filter((f) => f.icmpv6.type === Icmpv6Type.routerSolicitation && f.sourceMac.toString('hex') === IPXE_MAC);
    assert.ok(rs.length >= 2, `iPXE solicited ${rs.length} times`);
    for (const f of rs) {
      assert.equal(formatIpv6Address(f.ipv6.source), 'fe80::5054:ff:fe12:3456');
      assert.equal(formatIpv6Address(f.ipv6.destination), 'ff02::2');
      assert.equal(f.ipv6.hopLimit, 255);
      const body = decodeRouterSolicitation(f.icmpv6.message);
      assert.equal(body.code, 0);
      assert.deepEqual(body.options, [{ kind: 'sourceLinkLayerAddress', address: Buffer.from(IPXE_MAC, 'hex') }]);
    }
  });

  test("dnsmasq's advertisement: prefix with L and A, MTU, source link-layer address", () => {
    const ra = frames.map((f) => decodeIcmpv6Frame(f)).find((f) => f.icmpv6.type === Icmpv6Type.routerAdvertisement);
    assert.ok(ra);
    const body = decodeRouterAdvertisement(ra.icmpv6.message);
    assert.equal(body.flags & (RouterAdvertisementFlag.managed | RouterAdvertisementFlag.other), 0);
    const prefix = body.options.find((o) => o.kind === 'prefixInformation');
    assert.ok(prefix && prefix.kind === 'prefixInformation');
    assert.equal(formatIpv6Address(prefix.prefix), 'fd00:78::');
    assert.equal(prefix.prefixLength, 64);
    assert.equal(prefix.flags & (PrefixFlag.onLink | PrefixFlag.autonomous), PrefixFlag.onLink | PrefixFlag.autonomous);
    assert.deepEqual(
      body.options.map((o) => o.kind),
      ['prefixInformation', 'mtu', 'sourceLinkLayerAddress'],
    );
  });

  test('every frame round-trips byte for byte: options, RS/RA body, checksum, IPv6 and Ethernet headers', () => {
    let rsCount = 0;
    let raCount = 0;
    for (const f of frames) {
      const d = decodeIcmpv6Frame(f);
      let message: Buffer;
      if (d.icmpv6.type === Icmpv6Type.routerSolicitation) {
        message = encodeRouterSolicitation(decodeRouterSolicitation(d.icmpv6.message));
        rsCount++;
      } else if (d.icmpv6.type === Icmpv6Type.routerAdvertisement) {
        message = encodeRouterAdvertisement(decodeRouterAdvertisement(d.icmpv6.message));
        raCount++;
      } else message = Buffer.from(d.icmpv6.message);
      const again = encodeIcmpv6Frame(d.destinationMac, d.sourceMac, d.ipv6, message);
      assert.equal(again.toString('hex'), f.subarray(0, again.length).toString('hex'));
    }
    assert.ok(rsCount > 0 && raCount > 0);
  });
});

describe('router discovery codecs reject malformed input with a code', () => {
  const raFrame = frames.find((f) => decodeIcmpv6Frame(f).icmpv6.type === Icmpv6Type.routerAdvertisement)!;
  const ra = decodeIcmpv6Frame(raFrame);
  const raMessage = Buffer.from(ra.icmpv6.message);
  const IP = 14;
  const ICMP = 14 + 40;

  test('truncated anywhere: WIRE_TRUNCATED', () => {
    for (const cut of [0, 13, 14, 53]) throwsCode(() => decodeIcmpv6Frame(raFrame.subarray(0, cut)), 'WIRE_TRUNCATED', `cut at ${cut}`);
    // the payload length says more than the frame holds
    throwsCode(() => decodeIcmpv6Frame(raFrame.subarray(0, raFrame.length - 1)), 'WIRE_TRUNCATED', 'one byte short');
    throwsCode(() => decodeRouterAdvertisement(raMessage.subarray(0, 15)), 'WIRE_TRUNCATED', 'RA fixed part');
    throwsCode(() => decodeRouterSolicitation(Buffer.from([133, 0, 0, 0, 0, 0, 0])), 'WIRE_TRUNCATED', 'RS fixed part');
    throwsCode(() => decodeRouterAdvertisement(raMessage.subarray(0, raMessage.length - 1)), 'WIRE_TRUNCATED', 'last option cut');
    throwsCode(() => decodeRouterAdvertisement(Buffer.concat([raMessage, Buffer.from([1])])), 'WIRE_TRUNCATED', 'one stray byte');
  });

  test('bad fields: WIRE_BAD_FIELD', () => {
    const bad = (mutate: (b: Buffer) => void) => {
      const b = Buffer.from(raFrame);
      mutate(b);
      return b;
    };
    throwsCode(() => decodeIcmpv6Frame(bad((b) => (b[IP] = 0x45))), 'WIRE_BAD_FIELD', 'IP version 4');
    throwsCode(() => decodeIcmpv6Frame(bad((b) => b.writeUInt16BE(0x0800, 12))), 'WIRE_BAD_FIELD', 'EtherType');
    throwsCode(() => decodeIcmpv6Frame(bad((b) => (b[IP + 6] = 17))), 'WIRE_BAD_FIELD', 'next header UDP');
    throwsCode(() => decodeRouterSolicitation(raMessage), 'WIRE_BAD_FIELD', 'RA given as RS');
    const zeroLength = Buffer.from(raMessage);
    zeroLength[16 + 1] = 0;
    throwsCode(() => decodeRouterAdvertisement(zeroLength), 'WIRE_BAD_FIELD', 'option length 0');
    const prefix3 = Buffer.concat([raMessage.subarray(0, 16), Buffer.from([NdpOptionType.prefixInformation, 3]), Buffer.alloc(22)]);
    throwsCode(() => decodeRouterAdvertisement(prefix3), 'WIRE_BAD_FIELD', 'prefix information of 3 units');
    const mtu2 = Buffer.concat([raMessage.subarray(0, 16), Buffer.from([NdpOptionType.mtu, 2]), Buffer.alloc(14)]);
    throwsCode(() => decodeRouterAdvertisement(mtu2), 'WIRE_BAD_FIELD', 'MTU of 2 units');
    const longPrefix = Buffer.from(raMessage);
    longPrefix[16 + 2] = 129;
    throwsCode(() => decodeRouterAdvertisement(longPrefix), 'WIRE_BAD_FIELD', 'prefix length 129');
  });

  test('any flipped bit in the ICMPv6 message or the addresses: WIRE_BAD_CHECKSUM', () => {
    for (const at of [ICMP, ICMP + 1, ICMP + 5, ICMP + 20, raFrame.length - 1, IP + 8, IP + 39]) {
      const b = Buffer.from(raFrame);
      b[at]! ^= 0x10;
      throwsCode(() => decodeIcmpv6Frame(b), 'WIRE_BAD_CHECKSUM', `bit flipped at ${at}`);
      assert.doesNotThrow(() => decodeIcmpv6Frame(b, { verifyChecksum: false }));
    }
  });

  test('encoders refuse out-of-range fields', () => {
    const base = decodeRouterAdvertisement(raMessage);
    throwsCode(() => encodeRouterAdvertisement({ ...base, routerLifetime: 0x10000 }), 'WIRE_BAD_FIELD', 'router lifetime');
    throwsCode(() => encodeRouterAdvertisement({ ...base, options: [{ kind: 'mtu', reserved: 0, mtu: -1 }] }), 'WIRE_BAD_FIELD', 'mtu');
    throwsCode(
      () => encodeRouterAdvertisement({ ...base, options: [{ kind: 'prefixInformation', prefixLength: 64, flags: 0xc0, validLifetime: 1, preferredLifetime: 1, reserved2: 0, prefix: Buffer.alloc(8) }] }),
      'WIRE_BAD_FIELD',
      'short prefix',
    );
    throwsCode(() => encodeRouterSolicitation({ code: 0, reserved: 0, options: [{ kind: 'unknown', type: 9, data: Buffer.alloc(2100) }] }), 'WIRE_BAD_FIELD', 'option over 255 units');
  });

  test('the checksum computed by the encoder verifies, and covers the pseudo-header', () => {
    const header = { trafficClass: 0, flowLabel: 0, hopLimit: 255, source: parseIpv6Address('fe80::1'), destination: parseIpv6Address('ff02::1') };
    const frame = encodeIcmpv6Frame(Buffer.from('333300000001', 'hex'), Buffer.from('020000000001', 'hex'), header, encodeRouterSolicitation({ code: 0, reserved: 0, options: [] }));
    assert.equal(decodeIcmpv6Frame(frame).icmpv6.type, Icmpv6Type.routerSolicitation);
    assert.equal(decodeIpv6Packet(frame.subarray(14)).payloadLength, 8);
  });
});

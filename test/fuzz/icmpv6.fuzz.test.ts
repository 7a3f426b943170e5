/**
 * Fuzzes the IPv6 / ICMPv6 / router discovery decoders with mutations of real captured frames
 * (iPXE and Linux solicitations, dnsmasq advertisements, neighbor discovery): 60k whole frames
 * through Ethernet→IPv6→ICMPv6→RS/RA (checksum not verified, so mutations reach the options),
 * 20k with the checksum verified, and 40k bare RS/RA messages. Anything decoded is re-encoded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzDecoder } from '../support/mutate.js';
import { readPcap } from '../support/pcap.js';
import { decodeIcmpv6Frame, encodeIcmpv6Frame, Icmpv6Type } from '../../src/wire/icmpv6/icmpv6-message.js';
import { decodeRouterAdvertisement, decodeRouterSolicitation, encodeRouterAdvertisement, encodeRouterSolicitation } from '../../src/wire/icmpv6/router-discovery.js';
import { testdataPath } from '../support/testdata.js';

const here = new URL('../../src/wire/icmpv6/x', import.meta.url).href;
const frames = ['ipxe-dnsmasq-ra', 'ipxe-no-router'].flatMap((n) => readPcap(testdataPath(here, `${n}.pcap`)).map((r) => r.data));
const messages = frames.map((f) => Buffer.from(decodeIcmpv6Frame(f).icmpv6.message));

function decodeMessage(message: Buffer): Buffer | undefined {
  if (message[0] === Icmpv6Type.routerSolicitation) return encodeRouterSolicitation(decodeRouterSolicitation(message));
  if (message[0] === Icmpv6Type.routerAdvertisement) return encodeRouterAdvertisement(decodeRouterAdvertisement(message));
  return undefined;
}

function decodeFrame(verifyChecksum: boolean) {
  return (input: Buffer) => {
    const f = decodeIcmpv6Frame(input, { verifyChecksum });
    const again = decodeMessage(f.icmpv6.message);
    if (again) encodeIcmpv6Frame(f.destinationMac, f.sourceMac, f.ipv6, again);
  };
}

test('ICMPv6 router discovery decoders throw only DisklessErrors on 120k mutated inputs', { timeout: 120_000 }, () => {
  assert.ok(frames.length >= 20, `corpus has ${frames.length} frames`);
  const a = fuzzDecoder(decodeFrame(false), frames, 60_000, 1);
  const b = fuzzDecoder(decodeFrame(true), frames, 20_000, 2);
  const c = fuzzDecoder((m) => {
    const again = decodeMessage(m);
    // whatever decodes re-encodes to the same bytes, but for the checksum the encoder leaves zero
    if (again) {
      assert.equal(again.subarray(0, 2).toString('hex'), m.subarray(0, 2).toString('hex'));
      assert.equal(again.subarray(4).toString('hex'), m.subarray(4).toString('hex'));
    }
  }, messages, 40_000, 3);
  for (const r of [a, b, c]) assert.ok(r.accepted > 0 && r.rejected > 0, JSON.stringify(r));
});

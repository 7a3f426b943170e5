/**
 * Fuzzes the Ethernet frame decoder with mutations of real frames captured in the lab (iPXE,
 * dnsmasq, udhcpc DHCP; iPXE router solicitations; tagged variants). Every input must decode or
 * throw a DisklessError; what decodes must re-encode to the same header and payload.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeEthernetFrame, encodeEthernetFrame } from '../../src/wire/ethernet/ethernet-frame.js';
import { fuzzDecoder } from '../support/mutate.js';
import { LinkType, readPcap } from '../support/pcap.js';
import { testdataPath } from '../support/testdata.js';

const INPUTS = 100_000;
const captures = ['dhcp/testdata/ipxe-dnsmasq.pcap', 'dhcp/testdata/udhcpc-dnsmasq.pcap', 'icmpv6/testdata/ipxe-dnsmasq-ra.pcap'];

function corpus(): Buffer[] {
  const frames: Buffer[] = [];
  for (const c of captures) {
    const [dir, , file] = c.split('/');
    const path = testdataPath(new URL(`../../src/wire/${dir}/x`, import.meta.url).href, file!);
    for (const r of readPcap(path)) if (r.linkType === LinkType.ethernet) frames.push(r.data);
  }
  // 802.1Q-tagged copies of a few frames
  for (const f of frames.slice(0, 5)) frames.push(Buffer.concat([f.subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x2a]), f.subarray(12)]));
  return frames;
}

test(`Ethernet decoder survives ${INPUTS} mutated and random frames`, () => {
  const frames = corpus();
  assert.ok(frames.length >= 10, `corpus has ${frames.length} frames`);
  const result = fuzzDecoder(
    (input) => {
      const f = decodeEthernetFrame(input);
      if (f.vlan === undefined) {
        const again = encodeEthernetFrame(f.destination, f.source, f.etherType, f.payload);
        assert.deepEqual(again, input);
      }
      return f;
    },
    frames,
    INPUTS,
  );
  assert.equal(result.inputs, INPUTS);
  assert.ok(result.rejected > 0 && result.accepted > 0, JSON.stringify(result));
});

/**
 * Fuzzes the IPv4/UDP codec with >= 100k inputs mutated from the IPv4 packets of the real DHCP
 * captures. Every input must decode or throw a DisklessError; what decodes must re-encode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzDecoder } from '../support/mutate.js';
import { capturedIpv4Packets } from '../support/dhcp-captures.js';
import { decodeIpv4Udp, encodeIpv4Udp } from '../../src/wire/ipv4-udp/ipv4-udp.js';

const INPUTS = 120_000;

test(`IPv4/UDP decoder survives ${INPUTS} mutated and random inputs`, () => {
  const corpus = capturedIpv4Packets();
  const result = fuzzDecoder(
    (input) => {
      const p = decodeIpv4Udp(input, { acceptPartialUdpChecksum: true });
      const again = decodeIpv4Udp(encodeIpv4Udp(p));
      if (!again.payload.equals(p.payload) || again.source !== p.source || again.destinationPort !== p.destinationPort) throw new Error('re-encode differs');
    },
    corpus,
    INPUTS,
  );
  assert.equal(result.inputs, INPUTS);
  assert.ok(result.accepted > 100, `accepted ${result.accepted}`);
  assert.ok(result.rejected > 1000, `rejected ${result.rejected}`);
});

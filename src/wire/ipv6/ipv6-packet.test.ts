import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { parseIpv6Address } from './ipv6-address.js';
import { decodeIpv6Packet, encodeIpv6Packet, ipv6UpperLayerChecksum, Ipv6NextHeader, onesComplementSum } from './ipv6-packet.js';

const header = {
  trafficClass: 0xc0,
  flowLabel: 0xbebaf,
  nextHeader: Ipv6NextHeader.icmpv6,
  hopLimit: 255,
  source: parseIpv6Address('fe80::94cd:f1ff:fe97:3e16'),
  destination: parseIpv6Address('fe80::5054:ff:fe12:3456'),
};

test('header fields round-trip and Ethernet padding is cut off by Payload Length', () => {
  const payload = Buffer.from('0102030405', 'hex');
  const packet = encodeIpv6Packet(header, payload);
  assert.equal(packet.length, 45);
  assert.equal(packet.readUInt32BE(0), 0x6c0bebaf);
  const d = decodeIpv6Packet(Buffer.concat([packet, Buffer.alloc(11)]));
  assert.equal(d.trafficClass, 0xc0);
  assert.equal(d.flowLabel, 0xbebaf);
  assert.equal(d.payloadLength, 5);
  assert.deepEqual(d.payload, payload);
  assert.deepEqual(encodeIpv6Packet(d, d.payload), packet);
});

test('malformed headers carry codes', () => {
  const packet = encodeIpv6Packet(header, Buffer.alloc(8));
  const is = (code: 'WIRE_TRUNCATED' | 'WIRE_BAD_FIELD') => (e: unknown) => isDisklessError(e, code);
  assert.throws(() => decodeIpv6Packet(packet.subarray(0, 39)), is('WIRE_TRUNCATED'));
  assert.throws(() => decodeIpv6Packet(packet.subarray(0, 47)), is('WIRE_TRUNCATED'));
  const v4 = Buffer.from(packet);
  v4[0] = 0x45;
  assert.throws(() => decodeIpv6Packet(v4), is('WIRE_BAD_FIELD'));
  const jumbo = encodeIpv6Packet({ ...header, nextHeader: Ipv6NextHeader.hopByHop }, Buffer.alloc(0));
  assert.throws(() => decodeIpv6Packet(jumbo), is('WIRE_BAD_FIELD'));
  assert.throws(() => encodeIpv6Packet({ ...header, flowLabel: 0x100000 }, Buffer.alloc(0)), is('WIRE_BAD_FIELD'));
  assert.throws(() => encodeIpv6Packet({ ...header, source: Buffer.alloc(4) }, Buffer.alloc(0)), is('WIRE_BAD_FIELD'));
});

test('RFC 1071 sums: odd lengths, carries, and a message whose checksum verifies to zero', () => {
  assert.equal(onesComplementSum(Buffer.from('ffff0001', 'hex')), 0x0001);
  assert.equal(onesComplementSum(Buffer.from('01', 'hex')), 0x0100);
  const message = Buffer.from('8500000000000000', 'hex');
  const sum = ipv6UpperLayerChecksum(header.source, header.destination, Ipv6NextHeader.icmpv6, message);
  message.writeUInt16BE(sum, 2);
  assert.equal(ipv6UpperLayerChecksum(header.source, header.destination, Ipv6NextHeader.icmpv6, message), 0);
  // a 64 KiB upper layer of 0xff bytes does not overflow the fold
  assert.equal(onesComplementSum(Buffer.alloc(65534, 0xff)), 0xffff);
  assert.equal(onesComplementSum(Buffer.alloc(65535, 0xff)), 0xff00);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capturedIpv4Packets } from '../../../test/support/dhcp-captures.js';
import { isDisklessError, type ErrorCode } from '../../errors/index.js';
import { decodeIpv4Udp, encodeIpv4Udp, internetChecksum, IPV4_MIN_HEADER_LENGTH } from './ipv4-udp.js';

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (e: unknown) => isDisklessError(e, code), `expected ${code}`);
}

const sample = () =>
  encodeIpv4Udp({ source: '10.77.0.1', destination: '255.255.255.255', sourcePort: 67, destinationPort: 68, payload: Buffer.from('hello dhcp') });

test('encode computes both checksums; decode returns the same datagram', () => {
  const buf = sample();
  assert.equal(internetChecksum(buf.subarray(0, IPV4_MIN_HEADER_LENGTH)), 0);
  const p = decodeIpv4Udp(buf);
  assert.equal(p.source, '10.77.0.1');
  assert.equal(p.destination, '255.255.255.255');
  assert.equal(p.sourcePort, 67);
  assert.equal(p.destinationPort, 68);
  assert.equal(p.payload.toString(), 'hello dhcp');
  assert.equal(p.ttl, 64);
});

test('every captured packet decodes; re-encoding it with its own fields decodes to the same datagram', () => {
  const packets = capturedIpv4Packets();
  assert.ok(packets.length > 20);
  let partial = 0;
  for (const ip of packets) {
    let p;
    try {
      p = decodeIpv4Udp(ip);
    } catch (err) {
      // dnsmasq's replies and udhcpc's unicast renew/release go through a kernel UDP stack: the
      // checksum is offloaded (CHECKSUM_PARTIAL) and never finished on a bridge/veth
      assert.ok(isDisklessError(err, 'WIRE_BAD_CHECKSUM'));
      assert.notEqual(ip.readUInt32BE(12), 0, 'broadcasts from 0.0.0.0 come from raw-socket clients that fill their checksum');
      p = decodeIpv4Udp(ip, { acceptPartialUdpChecksum: true });
      partial++;
    }
    const again = decodeIpv4Udp(encodeIpv4Udp(p));
    assert.deepEqual({ ...again, payload: Buffer.from(again.payload) }, { ...p, payload: Buffer.from(p.payload) });
  }
  assert.ok(partial > 0 && partial < packets.length, `${partial} packets with offloaded checksums`);
});

test('captured frames from iPXE re-encode byte for byte (same id, TTL and DF)', () => {
  const ipxe = capturedIpv4Packets()[0]!;
  const p = decodeIpv4Udp(ipxe);
  const flags = ipxe.readUInt16BE(6);
  if (flags === 0x4000) assert.deepEqual(encodeIpv4Udp(p), ipxe.subarray(0, ipxe.readUInt16BE(2)));
  else assert.equal(decodeIpv4Udp(encodeIpv4Udp(p)).payload.length, p.payload.length);
});

test('Ethernet padding after the IPv4 total length is ignored', () => {
  const buf = Buffer.concat([sample(), Buffer.alloc(18)]);
  assert.equal(decodeIpv4Udp(buf).payload.toString(), 'hello dhcp');
});

test('truncations are WIRE_TRUNCATED', () => {
  const buf = sample();
  for (const n of [0, 19, 20, 27, buf.length - 1]) throwsCode(() => decodeIpv4Udp(buf.subarray(0, n)), 'WIRE_TRUNCATED');
});

test('bad version, IHL, protocol, fragments and UDP length are WIRE_BAD_FIELD', () => {
  const fix = (b: Buffer) => {
    b.writeUInt16BE(0, 10);
    b.writeUInt16BE(internetChecksum(b.subarray(0, 20)), 10);
    return b;
  };
  const mutations: Array<(b: Buffer) => void> = [
    (b) => (b[0] = 0x65),
    (b) => (b[0] = 0x44),
    (b) => (b[9] = 6),
    (b) => b.writeUInt16BE(0x2000, 6),
    (b) => b.writeUInt16BE(0x0001, 6),
    (b) => b.writeUInt16BE(4, 24),
  ];
  for (const m of mutations) {
    const b = sample();
    m(b);
    throwsCode(() => decodeIpv4Udp(fix(b)), 'WIRE_BAD_FIELD');
  }
  const longUdp = sample();
  longUdp.writeUInt16BE(200, 24);
  throwsCode(() => decodeIpv4Udp(longUdp), 'WIRE_TRUNCATED');
});

test('checksum errors are WIRE_BAD_CHECKSUM; UDP checksum 0 means none', () => {
  const a = sample();
  a[8] = 1; // TTL changed, header checksum stale
  throwsCode(() => decodeIpv4Udp(a), 'WIRE_BAD_CHECKSUM');
  const b = sample();
  b[b.length - 1] = b[b.length - 1]! ^ 0xff;
  throwsCode(() => decodeIpv4Udp(b), 'WIRE_BAD_CHECKSUM');
  assert.equal(decodeIpv4Udp(b, { verifyUdpChecksum: false }).payload.length, 10);
  b.writeUInt16BE(0, 26);
  assert.equal(decodeIpv4Udp(b).payload.length, 10);
});

test('bad addresses and ports are refused by the encoder', () => {
  throwsCode(() => encodeIpv4Udp({ source: '10.0.0', destination: '1.2.3.4', sourcePort: 1, destinationPort: 2, payload: Buffer.alloc(0) }), 'WIRE_BAD_FIELD');
  throwsCode(() => encodeIpv4Udp({ source: '10.0.0.1', destination: '1.2.3.4', sourcePort: 70000, destinationPort: 2, payload: Buffer.alloc(0) }), 'WIRE_BAD_FIELD');
});

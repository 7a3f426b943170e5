import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEthernetFrame, encodeEthernetFrame, EtherType, macToBuffer, macToString } from './ethernet-frame.js';
import { isDisklessError } from '../../errors/index.js';

test('round trip of an untagged frame', () => {
  const dst = macToBuffer('ff:ff:ff:ff:ff:ff');
  const src = macToBuffer('52:54:00:12:34:56');
  const frame = encodeEthernetFrame(dst, src, EtherType.ipv4, Buffer.from([1, 2, 3]));
  const d = decodeEthernetFrame(frame);
  assert.equal(macToString(d.source), '52:54:00:12:34:56');
  assert.equal(d.etherType, EtherType.ipv4);
  assert.deepEqual([...d.payload], [1, 2, 3]);
  assert.equal(d.vlan, undefined);
});

test('802.1Q tag is read and skipped', () => {
  const f = Buffer.from('ffffffffffff525400123456' + '8100' + '0064' + '86dd' + 'aa', 'hex');
  const d = decodeEthernetFrame(f);
  assert.equal(d.vlan, 100);
  assert.equal(d.etherType, EtherType.ipv6);
  assert.deepEqual([...d.payload], [0xaa]);
});

test('truncated headers are WIRE_TRUNCATED', () => {
  for (const len of [0, 1, 13]) assert.throws(() => decodeEthernetFrame(Buffer.alloc(len)), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED'));
  const tagged = Buffer.from('ffffffffffff5254001234568100', 'hex');
  assert.throws(() => decodeEthernetFrame(tagged), (e: unknown) => isDisklessError(e, 'WIRE_TRUNCATED'));
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIpv6Address } from '../wire/ipv6/ipv6-address.js';
import { kernelLinkLocalAddress, linkLocalAddressOf, parseIfInet6 } from './link-local-address.js';

/** /proc/net/if_inet6 as this machine printed it, plus a tentative and a DAD-failed address. */
const text = [
  '00000000000000000000000000000001 01 80 10 80       lo',
  'fd000000000000000000000000000002 04 40 00 82     eth0',
  'fe8000000000000000fc00fffe000001 04 40 20 80     eth0',
  'fe800000000000000000000000000007 09 40 20 40    tap0',
  'fe800000000000000000000000000008 0a 40 20 08    tap1',
  'garbage line',
].join('\n');

test('parseIfInet6 reads every well-formed line and skips the rest', () => {
  const rows = parseIfInet6(text);
  assert.equal(rows.length, 5);
  assert.deepEqual({ ...rows[2]!, address: formatIpv6Address(rows[2]!.address) }, { address: 'fe80::fc:ff:fe00:1', ifindex: 4, prefixLength: 64, scope: 0x20, flags: 0x80, ifname: 'eth0' });
});

test('kernelLinkLocalAddress picks the usable link-scope address of the index', () => {
  assert.equal(formatIpv6Address(kernelLinkLocalAddress(4, text)!), 'fe80::fc:ff:fe00:1');
  assert.equal(kernelLinkLocalAddress(1, text), undefined, 'loopback has no link-local');
  assert.equal(kernelLinkLocalAddress(9, text), undefined, 'tentative');
  assert.equal(kernelLinkLocalAddress(10, text), undefined, 'DAD failed');
});

test('linkLocalAddressOf falls back to EUI-64 of the MAC', () => {
  assert.equal(formatIpv6Address(linkLocalAddressOf(999_999, Buffer.from('525400123456', 'hex'))), 'fe80::5054:ff:fe12:3456');
});

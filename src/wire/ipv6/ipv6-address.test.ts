import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDisklessError } from '../../errors/index.js';
import { formatIpv6Address, isLinkLocal, isMulticast, isUnspecified, linkLocalFromMac, multicastMac, parseIpv6Address, parseIpv6Prefix } from './ipv6-address.js';

test('parse and format follow RFC 4291 §2.2 and RFC 5952 §4', () => {
  const cases: Array<[string, string, string]> = [
    ['::', '00000000000000000000000000000000', '::'],
    ['::1', '00000000000000000000000000000001', '::1'],
    ['ff02::1', 'ff020000000000000000000000000001', 'ff02::1'],
    ['FE80:0:0:0:5054:FF:FE12:3456', 'fe80000000000000505400fffe123456', 'fe80::5054:ff:fe12:3456'],
    ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201', '::ffff:c000:201'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000', '1:2:3:4:5:6:7:0'],
  ];
  for (const [text, hex, canonical] of cases) {
    const bytes = parseIpv6Address(text);
    assert.equal(bytes.toString('hex'), hex, text);
    assert.equal(formatIpv6Address(bytes), canonical, text);
    assert.equal(parseIpv6Address(canonical).toString('hex'), hex, canonical);
  }
});

test('malformed addresses and prefixes are WIRE_BAD_FIELD', () => {
  for (const bad of ['', ':', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::', '1:2:3:4:5:6:7', '::1.2.3', '1.2.3.4::', '::256.1.1.1', ':::']) {
    assert.throws(() => parseIpv6Address(bad), (e) => isDisklessError(e, 'WIRE_BAD_FIELD'), bad);
  }
  for (const bad of ['fd00::', 'fd00::/129', 'fd00::1/64', 'x/64', 'fd00::/']) {
    assert.throws(() => parseIpv6Prefix(bad), (e) => isDisklessError(e, 'WIRE_BAD_FIELD'), bad);
  }
  const p = parseIpv6Prefix('fd00:77::/64');
  assert.equal(p.length, 64);
  assert.equal(formatIpv6Address(p.address), 'fd00:77::');
});

test('EUI-64 link-local and multicast MAC (RFC 4291 App. A, RFC 2464 §7)', () => {
  // iPXE in the capture used exactly this address for MAC 52:54:00:12:34:56
  assert.equal(formatIpv6Address(linkLocalFromMac(Buffer.from('525400123456', 'hex'))), 'fe80::5054:ff:fe12:3456');
  assert.equal(formatIpv6Address(linkLocalFromMac(Buffer.from('96cdf1973e16', 'hex'))), 'fe80::94cd:f1ff:fe97:3e16');
  assert.equal(multicastMac(parseIpv6Address('ff02::1')).toString('hex'), '333300000001');
  assert.equal(multicastMac(parseIpv6Address('ff02::1:ff12:3456')).toString('hex'), '3333ff123456');
  assert.ok(isMulticast(parseIpv6Address('ff02::2')) && !isMulticast(parseIpv6Address('fe80::1')));
  assert.ok(isUnspecified(parseIpv6Address('::')) && !isUnspecified(parseIpv6Address('::1')));
  assert.ok(isLinkLocal(parseIpv6Address('febf::1')) && !isLinkLocal(parseIpv6Address('fec0::1')));
});

/**
 * Golden tests from real clients captured in the lab (testdata/capture.sh): iPXE in QEMU and
 * busybox udhcpc against dnsmasq, authoritative and proxyDHCP. Each DHCP payload is decoded to
 * a readable dump compared with the checked-in `<capture>.parsed` (regenerate with
 * UPDATE_GOLDEN=1), then re-encoded: the fixed header and the option list up to End must come
 * back byte for byte, and decoding the re-encoded message gives the same message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capturedDhcpPayloads as capturedPayloads, DHCP_CAPTURES as CAPTURES, DHCP_TESTDATA as testdata } from '../../../test/support/dhcp-captures.js';
import { decodeDhcpMessage, encodeDhcpMessage, type DhcpMessage } from './dhcp-message.js';
import { formatDhcpMessage } from './format-dhcp-message.js';
import { readPxeClientInfo } from './pxe-options.js';
import { BOOTP_FIXED_LENGTH, DHCP_MIN_LENGTH, DhcpMessageType, DhcpOption, IpxeOption } from './dhcp-constants.js';

function withoutOverload(m: DhcpMessage): Omit<DhcpMessage, 'overload'> {
  const { overload: _ignored, ...rest } = m;
  return { ...rest, options: new Map(rest.options) };
}

/** Length of the options field up to and including End. */
function optionsLength(buf: Buffer): number {
  let i = DHCP_MIN_LENGTH;
  while (i < buf.length && buf[i] !== DhcpOption.end) i += buf[i] === DhcpOption.pad ? 1 : 2 + buf[i + 1]!;
  return i + 1 - DHCP_MIN_LENGTH;
}

for (const name of CAPTURES) {
  test(`golden dump of ${name}.pcap`, () => {
    const packets = capturedPayloads(name);
    assert.ok(packets.length >= 6, `capture ${name} holds ${packets.length} packets`);
    const dump = packets.map((p, i) => `# packet ${i + 1}: ${p.srcPort} -> ${p.dstPort}\n${formatDhcpMessage(decodeDhcpMessage(p.payload))}`).join('\n\n') + '\n';
    const golden = join(testdata, `${name}.parsed`);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, dump);
    assert.equal(dump, readFileSync(golden, 'utf8'));
  });

  test(`decode -> encode round trip of ${name}.pcap`, () => {
    for (const { payload } of capturedPayloads(name)) {
      const decoded = decodeDhcpMessage(payload);
      const encoded = encodeDhcpMessage(decoded);
      assert.deepEqual(encoded.subarray(0, BOOTP_FIXED_LENGTH), payload.subarray(0, BOOTP_FIXED_LENGTH), 'fixed header');
      const n = optionsLength(payload);
      assert.deepEqual(encoded.subarray(BOOTP_FIXED_LENGTH, DHCP_MIN_LENGTH + n), payload.subarray(BOOTP_FIXED_LENGTH, DHCP_MIN_LENGTH + n), 'options up to End');
      assert.deepEqual(withoutOverload(decodeDhcpMessage(encoded)), withoutOverload(decoded));
    }
  });
}

test('iPXE in QEMU: PXEClient vendor class, arch 0, UNDI 2.1, user class iPXE, option 175 with features', () => {
  const discover = capturedPayloads('ipxe-dnsmasq')
    .map((p) => decodeDhcpMessage(p.payload))
    .find((m) => m.options.get(DhcpOption.messageType)?.[0] === DhcpMessageType.discover);
  assert.ok(discover);
  const info = readPxeClientInfo(discover.options);
  assert.deepEqual(info.architectures, [0]);
  assert.equal(info.vendorClass, 'PXEClient:Arch:00000:UNDI:002001');
  assert.equal(info.isPxeClient, true);
  assert.equal(info.isIpxe, true);
  assert.deepEqual(info.userClasses, ['iPXE']);
  assert.deepEqual(info.ndi, { type: 1, major: 2, minor: 1 });
  assert.ok(info.ipxe?.has(IpxeOption.featureHttp), 'iPXE advertises HTTP (175.19)');
  assert.ok(info.ipxe?.has(IpxeOption.busId), 'iPXE sends its bus id (175.177)');
  assert.match(info.uuid ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
});

test('proxyDHCP capture: dnsmasq proxy offer has no yiaddr and carries option 60 PXEClient; iPXE asks port 4011', () => {
  const packets = capturedPayloads('ipxe-proxy-dnsmasq');
  const proxyOffer = packets
    .map((p) => decodeDhcpMessage(p.payload))
    .find((m) => m.options.get(DhcpOption.messageType)?.[0] === DhcpMessageType.offer && m.yiaddr === '0.0.0.0');
  assert.ok(proxyOffer, 'a proxy offer');
  assert.equal(proxyOffer.options.get(DhcpOption.vendorClassIdentifier)?.toString(), 'PXEClient');
  assert.ok(packets.some((p) => p.dstPort === 4011), 'a request to port 4011');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDhcpMessage } from '../../src/wire/dhcp/dhcp-message.js';
import { readPxeClientInfo } from '../../src/wire/dhcp/pxe-options.js';
import { readPcap, udpPayloads } from '../support/pcap.js';
import { testdataPath } from '../support/testdata.js';

// A real capture (tcpdump -s 0 'udp port 67 or udp port 69' on the lab bridge) of OVMF's own PXE
// client booting through our server (`diskless lab boot --native-pxe`, default lab config):
// EDK2's DHCP exchange, its two TFTP read requests, then iPXE's DHCP exchange. It pins down what
// EDK2 sends and what our policy answers each client; the e2e test boots it live.
const exchanges = udpPayloads(readPcap(testdataPath(import.meta.url, 'edk2-pxe-ours.pcap')));

test('EDK2 PXE: DHCP with arch 7 and no option 175 gets ipxe.efi; iPXE (arch 7, option 175) then gets the HTTP script URL', () => {
  const dhcp = exchanges.filter((u) => u.dstPort === 67 || u.dstPort === 68).map((u) => ({ ...u, msg: decodeDhcpMessage(u.payload) }));
  const requests = dhcp.filter((d) => d.dstPort === 67);
  const replies = dhcp.filter((d) => d.dstPort === 68);
  assert.equal(requests.length, 4);
  assert.equal(replies.length, 4);
  const [firmware, ipxe] = [readPxeClientInfo(requests[0]!.msg.options), readPxeClientInfo(requests[2]!.msg.options)];
  assert.deepEqual(firmware.architectures, [7]);
  assert.equal(firmware.vendorClass, 'PXEClient:Arch:00007:UNDI:003000');
  assert.equal(firmware.isIpxe, false);
  assert.deepEqual(ipxe.architectures, [7]);
  assert.equal(ipxe.vendorClass, 'PXEClient:Arch:00007:UNDI:003010');
  assert.equal(ipxe.isIpxe, true);
  assert.deepEqual(replies.map((r) => r.msg.file), ['ipxe.efi', 'ipxe.efi', 'http://10.77.0.1:8080/boot/52-54-00-d1-5c-01.ipxe', 'http://10.77.0.1:8080/boot/52-54-00-d1-5c-01.ipxe']);
  // EDK2 sends its REQUEST only after collecting offers for its first 4 s discover timeout.
  const wait = requests[1]!.time - requests[0]!.time;
  assert.ok(wait > 3.5 && wait < 4.5, `EDK2 waited ${wait.toFixed(3)} s for more offers`);
  assert.ok(replies[0]!.time - requests[0]!.time < 0.05, 'our OFFER left at once');
});

test('EDK2 TFTP: a tsize probe, then the transfer, both with blksize 1468 and windowsize 4', () => {
  const rrqs = exchanges
    .filter((u) => u.dstPort === 69 && u.payload.readUInt16BE(0) === 1)
    .map((u) => u.payload.subarray(2).toString('latin1').split('\0').filter((s) => s !== ''));
  assert.deepEqual(rrqs, [
    ['ipxe.efi', 'octet', 'tsize', '0', 'blksize', '1468', 'windowsize', '4'],
    ['ipxe.efi', 'octet', 'blksize', '1468', 'windowsize', '4'],
  ]);
});

/**
 * The real DHCP captures of src/wire/dhcp/testdata (iPXE in QEMU, busybox udhcpc, dnsmasq;
 * regenerate with its capture.sh), for the golden tests and as fuzz corpora.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPcap, udpPayloads } from './pcap.js';
import { decodeEthernetFrame, EtherType } from '../../src/wire/ethernet/ethernet-frame.js';

/** Works from test/support (tsx) and dist/test/support (compiled): fixtures stay in the source tree. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..').replace(/[\\/]dist$/, '');
export const DHCP_TESTDATA = join(root, 'src', 'wire', 'dhcp', 'testdata');

export const DHCP_CAPTURES = ['ipxe-dnsmasq', 'ipxe-proxy-dnsmasq', 'udhcpc-dnsmasq'] as const;

/** The UDP payloads (DHCP messages) of one capture, with ports. */
export function capturedDhcpPayloads(name: string): Array<{ srcPort: number; dstPort: number; payload: Buffer }> {
  return udpPayloads(readPcap(join(DHCP_TESTDATA, `${name}.pcap`)));
}

/** Every IPv4 packet (Ethernet payload) of every capture. */
export function capturedIpv4Packets(): Buffer[] {
  const out: Buffer[] = [];
  for (const name of DHCP_CAPTURES) {
    for (const r of readPcap(join(DHCP_TESTDATA, `${name}.pcap`))) {
      const eth = decodeEthernetFrame(r.data);
      if (eth.etherType === EtherType.ipv4) out.push(Buffer.from(eth.payload));
    }
  }
  return out;
}

import { bpf, BpfClass, BpfMode, BpfOp, BpfSize, BpfSource, BPF_ACCEPT_ALL, jumpIfEqual, loadAbsolute, ret, type BpfProgram } from '../../net/bpf.js';
import { DhcpPort } from '../../wire/dhcp/dhcp-constants.js';
import { EtherType } from '../../wire/ethernet/ethernet-frame.js';
import { IpProtocol, Ipv4Flag } from '../../wire/ipv4-udp/ipv4-udp.js';

/**
 * The kernel-side filter of the DHCP server's raw sockets: untagged IPv4, UDP, not a fragment,
 * destination port 67 or 4011 (IHL-aware, like `tcpdump -dd 'udp dst port 67'`). Everything
 * else on the segment never wakes JS.
 */

/** Frame offsets (Ethernet header 14 bytes, then IPv4). */
const ETHERTYPE_OFFSET = 12;
const IPV4_OFFSET = 14;
const IPV4_PROTOCOL_OFFSET = IPV4_OFFSET + 9;
const IPV4_FRAGMENT_OFFSET = IPV4_OFFSET + 6;
/** UDP destination port, relative to the start of the UDP header (X = IHL * 4). */
const UDP_DST_PORT_FROM_IP = IPV4_OFFSET + 2;

/** The program; see the file comment. 12 instructions. */
export function dhcpServerFilter(): BpfProgram {
  // Jump offsets count instructions after the jump: index 10 accepts, 11 drops.
  return [
    /* 0 */ loadAbsolute('h', ETHERTYPE_OFFSET),
    /* 1 */ jumpIfEqual(EtherType.ipv4, 0, 9),
    /* 2 */ loadAbsolute('b', IPV4_PROTOCOL_OFFSET),
    /* 3 */ jumpIfEqual(IpProtocol.udp, 0, 7),
    /* 4 */ loadAbsolute('h', IPV4_FRAGMENT_OFFSET),
    /* 5 */ bpf(BpfClass.jmp | BpfOp.jset | BpfSource.k, 5, 0, Ipv4Flag.moreFragments | Ipv4Flag.fragmentOffsetMask),
    /* 6 */ bpf(BpfClass.ldx | BpfSize.b | BpfMode.msh, 0, 0, IPV4_OFFSET),
    /* 7 */ bpf(BpfClass.ld | BpfSize.h | BpfMode.ind, 0, 0, UDP_DST_PORT_FROM_IP),
    /* 8 */ jumpIfEqual(DhcpPort.server, 1, 0),
    /* 9 */ jumpIfEqual(DhcpPort.pxe, 0, 1),
    /* 10 */ ret(BPF_ACCEPT_ALL),
    /* 11 */ ret(0),
  ];
}

import { BOOTP_BROADCAST_FLAG, DhcpMessageType, DhcpOption, DhcpPort } from '../../wire/dhcp/dhcp-constants.js';
import type { DhcpMessage } from '../../wire/dhcp/dhcp-message.js';
import { macToString } from '../../wire/ethernet/ethernet-frame.js';

/**
 * Where a reply goes (RFC 2131 §4.1, "server → client" paragraph): to a relay, to the client's
 * configured address, broadcast, or by unicast to the client's MAC and the offered address
 * before the client has configured it. Pure.
 */

export const BROADCAST_ADDRESS = '255.255.255.255';
export const ZERO_ADDRESS = '0.0.0.0';
export const BROADCAST_MAC_TEXT = 'ff:ff:ff:ff:ff:ff';

export interface ReplyDestination {
  /**
   * raw: a whole Ethernet frame on the arrival interface (works before the client has an
   * address; no ARP needed). udp: the kernel's UDP socket (relays and port-4011 clients, which
   * have addresses and may sit behind a router).
   */
  readonly via: 'raw' | 'udp';
  readonly address: string;
  readonly port: number;
  /** Destination MAC for `raw`, lower-case colon form. */
  readonly mac?: string;
}

/** How the request reached us. */
export interface RequestArrival {
  /** UDP destination port: 67, or 4011 for PXE boot-server / proxyDHCP requests. */
  readonly port: number;
  /** IP source address and UDP source port of the request. */
  readonly sourceAddress: string;
  readonly sourcePort: number;
}

/**
 * The destination of `reply` to `request` (RFC 2131 §4.1):
 * - a request to port 4011 is answered to its source address and port (PXE 2.1 §2.2.5);
 * - giaddr set: to the relay, server port 67;
 * - DHCPNAK: broadcast;
 * - ciaddr set (RENEWING, REBINDING, INFORM): unicast to ciaddr;
 * - broadcast bit set, or no yiaddr to unicast to (a proxy offer): broadcast;
 * - otherwise unicast to chaddr and yiaddr.
 */
export function replyDestination(request: DhcpMessage, reply: DhcpMessage, arrival: RequestArrival): ReplyDestination {
  const mac = macToString(request.chaddr);
  if (arrival.port === DhcpPort.pxe) return { via: 'udp', address: arrival.sourceAddress, port: arrival.sourcePort };
  if (request.giaddr !== ZERO_ADDRESS) return { via: 'udp', address: request.giaddr, port: DhcpPort.server };
  const type = reply.options.get(DhcpOption.messageType)?.[0];
  const broadcast = { via: 'raw', address: BROADCAST_ADDRESS, port: DhcpPort.client, mac: BROADCAST_MAC_TEXT } as const;
  if (type === DhcpMessageType.nak) return broadcast;
  if (request.ciaddr !== ZERO_ADDRESS) return { via: 'raw', address: request.ciaddr, port: DhcpPort.client, mac };
  if (request.flags & BOOTP_BROADCAST_FLAG || reply.yiaddr === ZERO_ADDRESS) return broadcast;
  return { via: 'raw', address: reply.yiaddr, port: DhcpPort.client, mac };
}

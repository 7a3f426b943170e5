import { BOOTP_BROADCAST_FLAG, BootpField, BootpOp, DhcpMessageType, DhcpOption, IpxeOption, PXE_CLIENT_VENDOR_CLASS, PxeDiscoveryControl } from '../../wire/dhcp/dhcp-constants.js';
import type { DhcpMessage } from '../../wire/dhcp/dhcp-message.js';
import type { DhcpOptions } from '../../wire/dhcp/dhcp-options.js';
import { ipv4ListValue, ipv4Value, textValue, uint32Value, uint8Value } from '../../wire/dhcp/option-values.js';
import { encodeIpxeOptions, encodePxeVendorOptions, type PxeClientInfo } from '../../wire/dhcp/pxe-options.js';
import type { BootDecision } from './boot-policy.js';
import { ZERO_ADDRESS } from './reply-destination.js';

/**
 * Builds reply messages (RFC 2131 §4.3.1 table 3: which fields and options each reply type
 * carries) from the request, the server's network settings and the BootPolicy's decision.
 * Pure; the engine decides which reply to send.
 */

/** The network settings every address-carrying reply hands out (config `dhcp`). */
export interface NetworkSettings {
  readonly serverAddress: string;
  readonly subnetMask: string;
  readonly router?: string;
  readonly dns: readonly string[];
  readonly domain?: string;
}

/** Lease timers (RFC 2131 §4.4.5: T1 = 0.5, T2 = 0.875 of the lease by default). */
export function leaseTimers(leaseSeconds: number): { renewal: number; rebinding: number } {
  return { renewal: Math.floor(leaseSeconds / 2), rebinding: Math.floor((leaseSeconds * 7) / 8) };
}

/** A reply skeleton: copies xid, flags, giaddr, chaddr, htype (RFC 2131 table 3). */
export function replySkeleton(request: DhcpMessage, type: number, serverAddress: string, fields: Partial<Pick<DhcpMessage, 'ciaddr' | 'yiaddr' | 'siaddr' | 'flags'>> = {}): DhcpMessage {
  const options: DhcpOptions = new Map([
    [DhcpOption.messageType, uint8Value(type)],
    [DhcpOption.serverIdentifier, ipv4Value(serverAddress)],
  ]);
  return {
    op: BootpOp.reply,
    htype: request.htype,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags: fields.flags ?? request.flags,
    ciaddr: fields.ciaddr ?? ZERO_ADDRESS,
    yiaddr: fields.yiaddr ?? ZERO_ADDRESS,
    siaddr: fields.siaddr ?? ZERO_ADDRESS,
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    sname: '',
    file: '',
    options,
  };
}

/** Adds lease time and T1/T2 (OFFER, ACK of a REQUEST; never for INFORM: RFC 2131 §4.3.5). */
export function addLeaseOptions(reply: DhcpMessage, leaseSeconds: number): void {
  const t = leaseTimers(leaseSeconds);
  reply.options.set(DhcpOption.leaseTime, uint32Value(leaseSeconds));
  reply.options.set(DhcpOption.renewalTime, uint32Value(t.renewal));
  reply.options.set(DhcpOption.rebindingTime, uint32Value(t.rebinding));
}

/** Adds subnet mask, router, DNS, domain and host name (RFC 2132 §3). */
export function addNetworkOptions(reply: DhcpMessage, net: NetworkSettings, hostname?: string): void {
  reply.options.set(DhcpOption.subnetMask, ipv4Value(net.subnetMask));
  if (net.router) reply.options.set(DhcpOption.router, ipv4Value(net.router));
  if (net.dns.length > 0) reply.options.set(DhcpOption.domainNameServer, ipv4ListValue(net.dns));
  if (net.domain) reply.options.set(DhcpOption.domainName, textValue(net.domain));
  if (hostname) reply.options.set(DhcpOption.hostName, textValue(hostname));
}

/** How the boot options are shaped. */
export interface BootOptionsMode {
  /** proxyDHCP: add option 60 "PXEClient" and option 43 so PXE firmware takes the file from us. */
  readonly proxy: boolean;
}

/**
 * Adds what the client boots: siaddr and `file` (when it fits the 128-byte field), option 67
 * when the client asked for it, the name does not fit `file`, or the client is iPXE (it reads
 * 67 first), option 66 when asked for; echoes option 97 (RFC 4578 §2.3). Authoritative
 * replies to iPXE set 175.176 no-pxedhcp = 1 so iPXE takes the first offer without waiting
 * for ProxyDHCP (LAB.md §2). proxyDHCP replies carry option 60 "PXEClient" and option 43
 * with PXE_DISCOVERY_CONTROL "use the boot file" (PXE 2.1 §2.4.2), the shape PXE firmware and
 * iPXE recognise as a ProxyDHCP offer.
 */
export function addBootOptions(reply: DhcpMessage, request: DhcpMessage, client: PxeClientInfo, decision: BootDecision, mode: BootOptionsMode): DhcpMessage {
  const asked = new Set(request.options.get(DhcpOption.parameterRequestList) ?? []);
  const fileBytes = Buffer.byteLength(decision.bootFile, 'utf8');
  const fitsFile = fileBytes > 0 && fileBytes <= BootpField.fileLength && !decision.bootFile.includes('\0');
  if (fileBytes > 0 && (asked.has(DhcpOption.bootfileName) || !fitsFile || client.isIpxe)) {
    reply.options.set(DhcpOption.bootfileName, textValue(decision.bootFile));
  }
  if (asked.has(DhcpOption.tftpServerName) && decision.nextServer) reply.options.set(DhcpOption.tftpServerName, textValue(decision.nextServer));
  const uuid = request.options.get(DhcpOption.clientMachineId);
  if (uuid) reply.options.set(DhcpOption.clientMachineId, uuid);
  if (mode.proxy) {
    reply.options.set(DhcpOption.vendorClassIdentifier, textValue(PXE_CLIENT_VENDOR_CLASS));
    reply.options.set(DhcpOption.vendorSpecific, encodePxeVendorOptions({ discoveryControl: PxeDiscoveryControl.useBootFile }));
  } else if (client.isIpxe) {
    reply.options.set(DhcpOption.ipxeEncapsulated, encodeIpxeOptions([[IpxeOption.noPxeDhcp, uint8Value(1)]]));
  }
  return { ...reply, siaddr: decision.nextServer || ZERO_ADDRESS, file: fitsFile ? decision.bootFile : '' };
}

/** A DHCPNAK (RFC 2131 table 3): option 56 says why; broadcast bit set when relayed (§4.3.2). */
export function nakReply(request: DhcpMessage, serverAddress: string, why: string): DhcpMessage {
  const relayed = request.giaddr !== ZERO_ADDRESS;
  const reply = replySkeleton(request, DhcpMessageType.nak, serverAddress, { flags: relayed ? request.flags | BOOTP_BROADCAST_FLAG : request.flags });
  reply.options.set(DhcpOption.message, textValue(why));
  return reply;
}

import { intToIpv4, ipv4ToInt, parseCidr, type Cidr } from '../../config/ipv4.js';
import { BootpOp, DhcpMessageType, DhcpOption, DhcpPort, HardwareType } from '../../wire/dhcp/dhcp-constants.js';
import type { DhcpMessage } from '../../wire/dhcp/dhcp-message.js';
import { readIpv4Value, readUint16Value, readUint32Value } from '../../wire/dhcp/option-values.js';
import { optionText, readPxeClientInfo, type PxeClientInfo } from '../../wire/dhcp/pxe-options.js';
import { DHCP_DEFAULT_MAX_MESSAGE } from '../../wire/dhcp/dhcp-constants.js';
import { macToString } from '../../wire/ethernet/ethernet-frame.js';
import type { BootClient, BootDecision } from './boot-policy.js';
import { LeaseTable } from './lease-table.js';
import { addBootOptions, addLeaseOptions, addNetworkOptions, nakReply, replySkeleton, type NetworkSettings } from './reply-builder.js';
import { replyDestination, ZERO_ADDRESS, type ReplyDestination, type RequestArrival } from './reply-destination.js';

/**
 * The DHCP server's decisions as a pure state machine over a LeaseTable (RFC 2131 §4.3):
 * `inspect` classifies a decoded request (or says why to drop it), the server asks the
 * BootPolicy when `needsPolicy`, and `respond` applies the RFC rule for the message type and
 * client state, mutating the table and returning the reply and where it goes. No sockets,
 * clocks or logs: `now` comes in, so every rule is unit-tested without a network.
 */

/** Why a request got no answer; the `reason` label of diskless_dhcp_dropped_total. */
export type DhcpDropReason =
  | 'malformed'
  | 'bootreply'
  | 'bad-htype'
  | 'bad-hlen'
  | 'no-message-type'
  | 'unsupported-message-type'
  | 'other-server'
  | 'not-pxe-client'
  | 'proxy-mode'
  | 'policy-ignored'
  | 'pool-exhausted'
  | 'bad-request'
  | 'wrong-network'
  | 'unknown-lease'
  | 'not-for-us'
  | 'send-failed';

export interface DhcpEngineConfig {
  readonly mode: 'authoritative' | 'proxy';
  readonly serverAddress: string;
  /** The boot segment, e.g. "10.77.0.0/24"; addresses outside it are NAKed. */
  readonly subnet: string;
  readonly poolStart: string;
  readonly poolEnd: string;
  readonly router?: string;
  readonly dns: readonly string[];
  readonly domain?: string;
  readonly leaseTimeSeconds: number;
  /** How long an OFFER holds its address (RFC 2131 §4.3.1 "reserve the address"). */
  readonly offerHoldMs: number;
  /** How long a DECLINEd address stays unused (RFC 2131 §4.3.3). */
  readonly declineHoldMs: number;
  /** Addresses the pool must skip besides the server's own (other machines' reservations). */
  readonly reservedAddresses?: readonly string[];
}

/** Defaults for the engine settings that are not in the config file. */
export const DHCP_ENGINE_DEFAULTS = {
  offerHoldMs: 60_000,
  declineHoldMs: 10 * 60_000,
} as const;

/** A request that passed `inspect`. */
export interface InspectedRequest {
  readonly message: DhcpMessage;
  readonly arrival: RequestArrival;
  readonly type: number;
  readonly clientKey: string;
  readonly mac: string;
  readonly pxe: PxeClientInfo;
  /** True when `respond` needs a BootDecision (DISCOVER, REQUEST, INFORM). */
  readonly needsPolicy: boolean;
}

export type DhcpOutcome =
  | { readonly action: 'drop'; readonly reason: DhcpDropReason; readonly detail?: string }
  | {
      readonly action: 'reply';
      readonly reply: DhcpMessage;
      readonly destination: ReplyDestination;
      /** Largest message the client accepts (option 57 - 28, else 548). */
      readonly maxLength: number;
      /** True when the lease table changed in a way that must be on disk before the reply goes out. */
      readonly persist: boolean;
      readonly event: string;
    }
  | { readonly action: 'none'; readonly persist: boolean; readonly event: string };

const UDP_IP_HEADERS = 28;

export class DhcpEngine {
  readonly table: LeaseTable;
  private readonly subnet: Cidr;
  private readonly net: NetworkSettings;

  constructor(
    private readonly config: DhcpEngineConfig,
    table?: LeaseTable,
  ) {
    this.subnet = parseCidr(config.subnet);
    this.table = table ?? new LeaseTable({ poolStart: config.poolStart, poolEnd: config.poolEnd });
    this.table.exclude(config.serverAddress);
    for (const a of config.reservedAddresses ?? []) this.table.exclude(a);
    this.net = {
      serverAddress: config.serverAddress,
      subnetMask: intToIpv4(this.subnet.mask),
      ...(config.router ? { router: config.router } : {}),
      dns: config.dns,
      ...(config.domain ? { domain: config.domain } : {}),
    };
  }

  /** Classifies a decoded request; drops what no rule answers (RFC 2131 §4.1, §4.3). */
  inspect(message: DhcpMessage, arrival: RequestArrival): InspectedRequest | { readonly drop: DhcpDropReason } {
    if (message.op !== BootpOp.request) return { drop: 'bootreply' };
    if (message.htype !== HardwareType.ethernet) return { drop: 'bad-htype' };
    if (message.chaddr.length !== 6) return { drop: 'bad-hlen' };
    const typeData = message.options.get(DhcpOption.messageType);
    if (!typeData) return { drop: 'no-message-type' };
    const type = typeData[0]!;
    const handled: number[] = [DhcpMessageType.discover, DhcpMessageType.request, DhcpMessageType.decline, DhcpMessageType.release, DhcpMessageType.inform];
    if (!handled.includes(type)) return { drop: 'unsupported-message-type' };
    const serverId = message.options.get(DhcpOption.serverIdentifier);
    if (serverId && readIpv4Value(serverId, DhcpOption.serverIdentifier) !== this.config.serverAddress) {
      // The client chose another server (SELECTING), or talks to it: our offer is free again.
      this.table.withdrawOffer(clientKeyOf(message));
      return { drop: 'other-server' };
    }
    if (message.giaddr !== ZERO_ADDRESS && !this.inSubnet(message.giaddr)) return { drop: 'wrong-network' };
    let pxe: PxeClientInfo;
    try {
      pxe = readPxeClientInfo(message.options);
    } catch {
      return { drop: 'malformed' };
    }
    const proxyPort = arrival.port === DhcpPort.pxe;
    if (this.config.mode === 'proxy' || proxyPort) {
      // proxyDHCP (PXE 2.1 §2.2): only PXE clients; port 67 DISCOVERs get offers, REQUESTs to
      // 4011 (or to us on 67) get ACKs; everything about addresses is the other server's.
      if (!pxe.isPxeClient) return { drop: 'not-pxe-client' };
      const ok = proxyPort ? type === DhcpMessageType.request || type === DhcpMessageType.inform : type === DhcpMessageType.discover || (type === DhcpMessageType.request && serverId !== undefined);
      if (!ok) return { drop: 'proxy-mode' };
    }
    const needsPolicy = type === DhcpMessageType.discover || type === DhcpMessageType.request || type === DhcpMessageType.inform;
    return { message, arrival, type, clientKey: clientKeyOf(message), mac: macToString(message.chaddr), pxe, needsPolicy };
  }

  /** The BootPolicy's view of an inspected request. */
  bootClient(req: InspectedRequest, ifname: string): BootClient {
    const uc = req.message.options.get(DhcpOption.userClass);
    return {
      mac: req.mac,
      arch: req.pxe.architectures[0],
      isIpxe: req.pxe.isIpxe,
      vendorClass: req.pxe.vendorClass,
      userClass: uc ? optionText(uc) : undefined,
      ifname,
    };
  }

  /**
   * Applies RFC 2131 §4.3 to an inspected request. `decision` is the BootPolicy's answer for
   * requests with `needsPolicy` (null: stay silent), ignored otherwise.
   */
  respond(req: InspectedRequest, decision: BootDecision | null, now: number): DhcpOutcome {
    if (req.needsPolicy && decision === null) return { action: 'drop', reason: 'policy-ignored' };
    const proxy = this.config.mode === 'proxy' || req.arrival.port === DhcpPort.pxe;
    if (proxy) return this.proxyReply(req, decision!);
    switch (req.type) {
      case DhcpMessageType.discover:
        return this.discover(req, decision!, now);
      case DhcpMessageType.request:
        return this.request(req, decision!, now);
      case DhcpMessageType.decline:
        return this.decline(req, now);
      case DhcpMessageType.release:
        return this.release(req, now);
      default:
        return this.inform(req, decision!);
    }
  }

  /** §4.3.1: pick an address (reservation, history, requested, free, oldest expired), hold it, OFFER. */
  private discover(req: InspectedRequest, decision: BootDecision, now: number): DhcpOutcome {
    const address = this.chooseAddress(req, decision, now);
    if (!address) return { action: 'drop', reason: 'pool-exhausted' };
    this.table.offer(req.clientKey, req.mac, address, now, this.config.offerHoldMs);
    return this.addressReply(req, decision, DhcpMessageType.offer, address, false, 'offer');
  }

  /** §4.3.2: REQUEST in SELECTING, INIT-REBOOT, RENEWING or REBINDING. */
  private request(req: InspectedRequest, decision: BootDecision, now: number): DhcpOutcome {
    const m = req.message;
    const requestedData = m.options.get(DhcpOption.requestedIpAddress);
    const requested = requestedData ? readIpv4Value(requestedData, DhcpOption.requestedIpAddress) : undefined;
    const selecting = m.options.has(DhcpOption.serverIdentifier);
    const address = selecting || requested ? requested : m.ciaddr !== ZERO_ADDRESS ? m.ciaddr : undefined;
    if (!address) return { action: 'drop', reason: 'bad-request', detail: 'REQUEST without requested address or ciaddr' };
    const nak = (why: string): DhcpOutcome => ({
      action: 'reply',
      reply: nakReply(m, this.config.serverAddress, why),
      destination: replyDestination(m, nakReply(m, this.config.serverAddress, why), req.arrival),
      maxLength: maxLengthOf(m),
      persist: false,
      event: 'nak',
    });
    if (!this.inSubnet(address)) return nak(`${address} is not on this network`);
    const reserved = this.reservation(decision);
    if (reserved && reserved !== address) return nak(`${address} is not this client's reserved address`);
    const own = this.table.leaseOf(req.clientKey);
    if (selecting) {
      // The client must take what we offered it (or what it already holds).
      if (!own || own.address !== address) return nak(`${address} was not offered to this client`);
    } else if (own && own.address !== address && own.state === 'bound' && own.expiresAt > now) {
      return nak(`this client holds ${own.address}, not ${address}`);
    }
    const isReserved = reserved === address;
    if (!isReserved && !this.table.inPool(address)) return nak(`${address} is outside the pool`);
    if (!this.table.isAvailable(address, req.clientKey, now, isReserved)) return nak(`${address} is in use`);
    const lease = Math.min(this.config.leaseTimeSeconds, requestedLeaseSeconds(m) ?? Infinity);
    this.table.bind(req.clientKey, req.mac, address, now, lease * 1000, decision.hostname ?? clientHostname(m));
    return this.addressReply(req, decision, DhcpMessageType.ack, address, true, 'ack', lease);
  }

  /** §4.3.3: the client found the address in use; keep it out of the pool for a while. */
  private decline(req: InspectedRequest, now: number): DhcpOutcome {
    const data = req.message.options.get(DhcpOption.requestedIpAddress);
    if (!data) return { action: 'drop', reason: 'bad-request', detail: 'DECLINE without option 50' };
    const address = readIpv4Value(data, DhcpOption.requestedIpAddress);
    if (!this.inSubnet(address)) return { action: 'drop', reason: 'wrong-network' };
    this.table.decline(req.clientKey, address, now, this.config.declineHoldMs);
    return { action: 'none', persist: true, event: 'decline' };
  }

  /** §4.3.4: the client gives its address back. */
  private release(req: InspectedRequest, now: number): DhcpOutcome {
    if (!this.table.release(req.clientKey, req.message.ciaddr, now)) return { action: 'drop', reason: 'unknown-lease' };
    return { action: 'none', persist: true, event: 'release' };
  }

  /** §4.3.5: configuration without an address; no lease time; unicast to ciaddr. */
  private inform(req: InspectedRequest, decision: BootDecision): DhcpOutcome {
    const m = req.message;
    if (m.ciaddr === ZERO_ADDRESS) return { action: 'drop', reason: 'bad-request', detail: 'INFORM without ciaddr' };
    const reply = replySkeleton(m, DhcpMessageType.ack, this.config.serverAddress, { ciaddr: m.ciaddr });
    addNetworkOptions(reply, this.net, decision.hostname);
    const full = addBootOptions(reply, m, req.pxe, decision, { proxy: false });
    return { action: 'reply', reply: full, destination: replyDestination(m, full, req.arrival), maxLength: maxLengthOf(m), persist: false, event: 'inform-ack' };
  }

  /** proxyDHCP: an OFFER (port 67) or ACK (port 4011) with boot options only, no address. */
  private proxyReply(req: InspectedRequest, decision: BootDecision): DhcpOutcome {
    const m = req.message;
    const type = req.type === DhcpMessageType.discover ? DhcpMessageType.offer : DhcpMessageType.ack;
    const reply = replySkeleton(m, type, this.config.serverAddress, { ciaddr: type === DhcpMessageType.ack ? m.ciaddr : ZERO_ADDRESS });
    const full = addBootOptions(reply, m, req.pxe, decision, { proxy: true });
    const event = type === DhcpMessageType.offer ? 'proxy-offer' : 'proxy-ack';
    return { action: 'reply', reply: full, destination: replyDestination(m, full, req.arrival), maxLength: maxLengthOf(m), persist: false, event };
  }

  private addressReply(req: InspectedRequest, decision: BootDecision, type: number, address: string, persist: boolean, event: string, leaseSeconds = this.config.leaseTimeSeconds): DhcpOutcome {
    const m = req.message;
    const reply = replySkeleton(m, type, this.config.serverAddress, { yiaddr: address, ciaddr: type === DhcpMessageType.ack ? m.ciaddr : ZERO_ADDRESS });
    addLeaseOptions(reply, leaseSeconds);
    addNetworkOptions(reply, this.net, decision.hostname);
    const full = addBootOptions(reply, m, req.pxe, decision, { proxy: false });
    return { action: 'reply', reply: full, destination: replyDestination(m, full, req.arrival), maxLength: maxLengthOf(m), persist, event };
  }

  private chooseAddress(req: InspectedRequest, decision: BootDecision, now: number): string | undefined {
    const reserved = this.reservation(decision);
    if (reserved && this.table.isAvailable(reserved, req.clientKey, now, true)) return reserved;
    const requestedData = req.message.options.get(DhcpOption.requestedIpAddress);
    const requested = requestedData ? readIpv4Value(requestedData, DhcpOption.requestedIpAddress) : undefined;
    return this.table.allocate(req.clientKey, now, requested && this.inSubnet(requested) ? requested : undefined);
  }

  /** The policy's reservation when it lies on this network (learnt so the pool skips it). */
  private reservation(decision: BootDecision): string | undefined {
    const a = decision.address;
    if (!a || !this.inSubnet(a) || a === this.config.serverAddress) return undefined;
    this.table.exclude(a);
    return a;
  }

  private inSubnet(address: string): boolean {
    return ((ipv4ToInt(address) & this.subnet.mask) >>> 0) === this.subnet.network;
  }
}

/** RFC 2131 §4.2: option 61 when present, else htype + chaddr, as hex. */
export function clientKeyOf(message: DhcpMessage): string {
  const id = message.options.get(DhcpOption.clientIdentifier);
  if (id) return id.toString('hex');
  return Buffer.concat([Buffer.from([message.htype]), message.chaddr]).toString('hex');
}

function maxLengthOf(message: DhcpMessage): number {
  const data = message.options.get(DhcpOption.maxMessageSize);
  return data ? Math.max(DHCP_DEFAULT_MAX_MESSAGE, readUint16Value(data, DhcpOption.maxMessageSize) - UDP_IP_HEADERS) : DHCP_DEFAULT_MAX_MESSAGE;
}

function requestedLeaseSeconds(message: DhcpMessage): number | undefined {
  const data = message.options.get(DhcpOption.leaseTime);
  if (!data) return undefined;
  const s = readUint32Value(data, DhcpOption.leaseTime);
  return s >= 60 ? s : undefined;
}

function clientHostname(message: DhcpMessage): string | undefined {
  const data = message.options.get(DhcpOption.hostName);
  return data ? optionText(data) : undefined;
}

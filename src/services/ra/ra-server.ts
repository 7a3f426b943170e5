/**
 * IPv6 router advertisements on the boot segment, so iPXE (which configures IPv4 and IPv6
 * together) stops soliciting at once instead of waiting ~15 s for a router (LAB.md §2). We are
 * not a router: every RA says Router Lifetime 0. One raw socket per interface, filtered in the
 * kernel to ICMPv6 Router Solicitations; each valid RS is answered at once, and unsolicited RAs
 * go to all-nodes at start (a few quickly) and then every interval with jitter (RFC 4861 §6.2).
 */
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import { EtherType } from '../../wire/ethernet/ethernet-frame.js';
import { Icmpv6Type } from '../../wire/icmpv6/icmpv6-message.js';
import { formatIpv6Address, parseIpv6Prefix, type Ipv6Prefix } from '../../wire/ipv6/ipv6-address.js';
import { IPV6_HEADER_LENGTH, Ipv6NextHeader } from '../../wire/ipv6/ipv6-packet.js';
import { matchAll, type BpfProgram } from '../../net/bpf.js';
import { linkLocalAddressOf } from '../../net/link-local-address.js';
import { openRawSocket } from '../../net/open-raw-socket.js';
import type { RawSocket, RawSocketOptions } from '../../net/raw-socket.js';
import type { Service } from '../service.js';
import { allNodesDestination, buildRouterAdvertisementFrame, checkRouterSolicitation, RouterConstant, unsolicitedDelayMs, type AdvertisedLink, type Destination, type DropReason } from './router-advertiser.js';

export interface RaServerOptions {
  /** Interfaces to advertise on (config ra.interfaces, default dhcp.interfaces). */
  readonly interfaces: readonly string[];
  /** On-link prefix to advertise, e.g. "fd00:77::/64"; none when undefined. */
  readonly prefix?: string;
  /** MaxRtrAdvInterval in seconds (config ra.intervalSeconds). */
  readonly intervalSeconds?: number;
  /** Spacing of the first MAX_INITIAL_RTR_ADVERTISEMENTS unsolicited RAs. */
  readonly initialIntervalMs?: number;
  /** A solicitor answered by unicast is not answered again within this time. */
  readonly replyHoldMs?: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Opens the raw sockets; tests inject their own. Default `openRawSocket`. */
  readonly openSocket?: (options: RawSocketOptions) => RawSocket;
  /** The RA source address of an interface. Default: the kernel's link-local, else EUI-64. */
  readonly linkLocalAddress?: (ifindex: number, mac: Buffer) => Buffer;
  /** Jitter source in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

export const RA_SERVER_DEFAULTS = {
  intervalSeconds: 200,
  initialIntervalMs: 2_000,
  replyHoldMs: 1_000,
  /** Solicitations are rare and small: 256 KiB holds thousands. */
  receiveBufferBytes: 256 * 1024,
} as const;

const ETHERNET_HEADER = 14;

/**
 * Kernel filter: IPv6, Next Header ICMPv6, type 133, so JS sees solicitations only
 * (extension headers before ICMPv6 do not occur in RSs; such frames are dropped in the kernel).
 */
export function routerSolicitationFilter(): BpfProgram {
  return matchAll([
    { size: 'h', offset: 12, value: EtherType.ipv6 },
    { size: 'b', offset: ETHERNET_HEADER + 6, value: Ipv6NextHeader.icmpv6 },
    { size: 'b', offset: ETHERNET_HEADER + IPV6_HEADER_LENGTH, value: Icmpv6Type.routerSolicitation },
  ]);
}

/** Per-interface state. */
interface Link {
  readonly ifname: string;
  readonly socket: RawSocket;
  readonly advertised: AdvertisedLink;
  unsolicitedSent: number;
  timer: NodeJS.Timeout | undefined;
  /** Multicast RA answering an unspecified-source RS, held back by MIN_DELAY_BETWEEN_RAS. */
  pendingMulticast: NodeJS.Timeout | undefined;
  lastMulticastAt: number;
  /** Solicitor MAC (hex) → when it was last answered. */
  readonly answered: Map<string, number>;
}

/** Entries older than the hold time are pruned once the map grows past this. */
const ANSWERED_PRUNE_SIZE = 1024;

export class RaServer implements Service {
  readonly name = 'ra';
  private readonly options: RaServerOptions;
  private readonly prefix: Ipv6Prefix | undefined;
  private readonly intervalSeconds: number;
  private readonly links: Link[] = [];
  private running = false;

  constructor(options: RaServerOptions) {
    this.options = options;
    if (!Array.isArray(options.interfaces) || options.interfaces.length === 0) {
      throw new DisklessError('CONFIG_INVALID', 'ra.interfaces is empty: name at least one interface to advertise on', { field: 'ra.interfaces', value: options.interfaces, allowed: 'a non-empty list of interface names' });
    }
    this.intervalSeconds = options.intervalSeconds ?? RA_SERVER_DEFAULTS.intervalSeconds;
    if (!Number.isFinite(this.intervalSeconds) || this.intervalSeconds < 3 || this.intervalSeconds > 1800) {
      throw new DisklessError('CONFIG_INVALID', `ra.intervalSeconds is ${this.intervalSeconds}`, { field: 'ra.intervalSeconds', value: this.intervalSeconds, allowed: '3..1800 (RFC 4861 §6.2.1 MaxRtrAdvInterval)' });
    }
    try {
      this.prefix = options.prefix === undefined ? undefined : parseIpv6Prefix(options.prefix, 'ra.prefix');
    } catch (err) {
      throw new DisklessError('CONFIG_INVALID', `ra.prefix is ${JSON.stringify(options.prefix)}: ${(err as Error).message}`, { field: 'ra.prefix', value: options.prefix, allowed: 'an IPv6 prefix such as fd00:77::/64' }, { cause: err });
    }
  }

  /** Opens one socket per interface and sends the first unsolicited RA on each. A failure closes what was opened. */
  async start(): Promise<void> {
    if (this.running) return;
    const open = this.options.openSocket ?? openRawSocket;
    const linkLocalOf = this.options.linkLocalAddress ?? linkLocalAddressOf;
    try {
      for (const ifname of this.options.interfaces) {
        const socket = open({ ifname, etherType: EtherType.ipv6, filter: routerSolicitationFilter(), receiveBufferBytes: RA_SERVER_DEFAULTS.receiveBufferBytes });
        const advertised: AdvertisedLink = { mac: socket.mac, linkLocal: linkLocalOf(socket.ifindex, socket.mac), ...(this.prefix ? { prefix: this.prefix } : {}) };
        this.links.push({ ifname, socket, advertised, unsolicitedSent: 0, timer: undefined, pendingMulticast: undefined, lastMulticastAt: -Infinity, answered: new Map() });
      }
    } catch (err) {
      this.closeAll();
      throw err;
    }
    this.running = true;
    for (const link of this.links) {
      link.socket.onFrame((frame) => this.onFrame(link, frame));
      link.socket.onError?.((err) => {
        this.options.metrics.inc('diskless_ra_receive_errors_total', { interface: link.ifname }, 1, 'receive errors on the RA raw sockets (link down...)');
        this.options.log.warn({ interface: link.ifname, err }, 'ra: receive error');
      });
      this.options.log.info({ interface: link.ifname, source: formatIpv6Address(link.advertised.linkLocal), prefix: this.options.prefix }, 'ra: advertising (router lifetime 0)');
      this.sendUnsolicited(link);
    }
  }

  /** Stops the timers and closes the sockets. Safe twice and before start. */
  async stop(): Promise<void> {
    this.running = false;
    this.closeAll();
  }

  private closeAll(): void {
    for (const link of this.links) {
      clearTimeout(link.timer);
      clearTimeout(link.pendingMulticast);
      link.socket.close();
    }
    this.links.length = 0;
  }

  private drop(link: Link, reason: DropReason): void {
    this.options.metrics.inc('diskless_ra_dropped_total', { interface: link.ifname, reason }, 1, 'received solicitations not answered, and advertisements not sent, by reason');
  }

  /** One frame from the kernel filter. Never throws: a bug is logged and counted. */
  private onFrame(link: Link, frame: Buffer): void {
    try {
      if (!this.running) return;
      const verdict = checkRouterSolicitation(frame);
      if (!verdict.ok) {
        this.drop(link, verdict.reason);
        this.options.log.debug({ interface: link.ifname, reason: verdict.reason }, 'ra: solicitation dropped');
        return;
      }
      this.options.metrics.inc('diskless_ra_solicitations_total', { interface: link.ifname }, 1, 'valid router solicitations received');
      if (verdict.multicastReply) this.answerMulticast(link);
      else this.answerUnicast(link, verdict.solicitor);
    } catch (err) {
      this.drop(link, 'internal');
      this.options.log.error({ interface: link.ifname, err }, 'ra: failed to handle a frame');
    }
  }

  /** §6.2.6: a router MAY unicast the answer to a solicitor with a specified source. We do, at once. */
  private answerUnicast(link: Link, to: Destination): void {
    const key = to.mac.toString('hex');
    const now = Date.now();
    const hold = this.options.replyHoldMs ?? RA_SERVER_DEFAULTS.replyHoldMs;
    const last = link.answered.get(key);
    if (last !== undefined && now - last < hold) {
      this.drop(link, 'rate_limited');
      return;
    }
    if (link.answered.size >= ANSWERED_PRUNE_SIZE) {
      for (const [k, t] of link.answered) if (now - t >= hold) link.answered.delete(k);
    }
    link.answered.set(key, now);
    if (this.send(link, to)) {
      this.options.metrics.inc('diskless_ra_advertisements_total', { interface: link.ifname, kind: 'solicited' }, 1, 'router advertisements sent');
      this.options.log.debug({ interface: link.ifname, to: formatIpv6Address(to.address) }, 'ra: answered solicitation');
    }
  }

  /** §6.2.6: multicast answers are spaced at least MIN_DELAY_BETWEEN_RAS apart; one pending answer covers all waiting solicitors. */
  private answerMulticast(link: Link): void {
    if (link.pendingMulticast) return;
    const wait = link.lastMulticastAt + RouterConstant.minDelayBetweenRasMs - Date.now();
    const sendNow = () => {
      link.pendingMulticast = undefined;
      if (!this.running) return;
      link.lastMulticastAt = Date.now();
      if (this.send(link, allNodesDestination())) this.options.metrics.inc('diskless_ra_advertisements_total', { interface: link.ifname, kind: 'solicited' }, 1, 'router advertisements sent');
    };
    if (wait <= 0) sendNow();
    else link.pendingMulticast = setTimeout(sendNow, wait);
  }

  /** Sends an unsolicited RA to all-nodes and schedules the next one (§6.2.4). */
  private sendUnsolicited(link: Link): void {
    if (!this.running) return;
    link.lastMulticastAt = Date.now();
    if (this.send(link, allNodesDestination())) {
      this.options.metrics.inc('diskless_ra_advertisements_total', { interface: link.ifname, kind: 'unsolicited' }, 1, 'router advertisements sent');
    }
    link.unsolicitedSent++;
    const delay = unsolicitedDelayMs(link.unsolicitedSent, this.intervalSeconds, this.options.initialIntervalMs ?? RA_SERVER_DEFAULTS.initialIntervalMs, this.options.random ?? Math.random);
    link.timer = setTimeout(() => this.sendUnsolicited(link), delay);
  }

  private send(link: Link, to: Destination): boolean {
    try {
      link.socket.send(buildRouterAdvertisementFrame(link.advertised, to));
      return true;
    } catch (err) {
      this.drop(link, 'send_failed');
      const level = isDisklessError(err, 'NET_SEND_BUSY') ? 'debug' : 'warn';
      this.options.log[level]({ interface: link.ifname, err }, 'ra: cannot send advertisement');
      return false;
    }
  }
}

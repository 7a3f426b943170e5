/**
 * The RA server's decisions, pure and clock-free: which solicitations are valid (RFC 4861
 * §6.1.1), where the answer goes (§6.2.6), what the advertisement says (§4.2, §6.2.1 for a
 * host-only "router": lifetime 0), and when the next unsolicited one is due (§6.2.4). The
 * server (./ra-server.ts) does the I/O and the timers around these.
 */
import { isDisklessError } from '../../errors/index.js';
import { decodeIcmpv6Frame, encodeIcmpv6Frame, Icmpv6Type } from '../../wire/icmpv6/icmpv6-message.js';
import { PrefixFlag, type NdpOption } from '../../wire/icmpv6/ndp-options.js';
import { decodeRouterSolicitation, encodeRouterAdvertisement } from '../../wire/icmpv6/router-discovery.js';
import { Ipv6Address, isUnspecified, multicastMac, parseIpv6Address, type Ipv6Prefix } from '../../wire/ipv6/ipv6-address.js';

/** Protocol constants of RFC 4861 §10 (router constants) and §6.2.1 defaults. */
export const RouterConstant = {
  maxInitialRtrAdvertisements: 3,
  maxInitialRtrAdvertIntervalMs: 16_000,
  minDelayBetweenRasMs: 3_000,
  /** Hop limit every ND message is sent and received with (§6.1.1, §6.1.2). */
  ndHopLimit: 255,
  /** AdvValidLifetime and AdvPreferredLifetime defaults (§6.2.1): 30 and 7 days. */
  advValidLifetimeSeconds: 2_592_000,
  advPreferredLifetimeSeconds: 604_800,
} as const;

/** Prefix length hosts form addresses in: 128 minus a 64-bit Ethernet interface identifier. */
export const SLAAC_PREFIX_LENGTH = 64;

/** What an interface advertises. */
export interface AdvertisedLink {
  /** The interface's MAC: Ethernet source and the Source Link-Layer Address option. */
  readonly mac: Buffer;
  /** The interface's link-local address: the RA's source (§4.2). */
  readonly linkLocal: Buffer;
  /** On-link prefix to advertise with L and A set; none when undefined. */
  readonly prefix?: Ipv6Prefix;
}

/** Where one advertisement goes. */
export interface Destination {
  readonly mac: Buffer;
  /** 16 bytes. */
  readonly address: Buffer;
}

/** All-nodes (ff02::1) on Ethernet: the destination of unsolicited RAs (§6.2.4). */
export function allNodesDestination(): Destination {
  const address = parseIpv6Address(Ipv6Address.allNodes);
  return { mac: multicastMac(address), address };
}

/**
 * A whole Ethernet frame carrying our RA: Cur Hop Limit 0 (unspecified), M=O=0, Router
 * Lifetime 0 (not a default router, §4.2: hosts do not route through us, but iPXE stops
 * soliciting), Reachable Time and Retrans Timer 0 (unspecified), options SLLA and the
 * optional prefix (§4.6.2) with L, and A when it is a /64.
 */
export function buildRouterAdvertisementFrame(link: AdvertisedLink, to: Destination): Buffer {
  const options: NdpOption[] = [{ kind: 'sourceLinkLayerAddress', address: link.mac }];
  if (link.prefix) {
    options.push({
      kind: 'prefixInformation',
      prefixLength: link.prefix.length,
      // SLAAC needs a /64 on Ethernet (RFC 4862 §5.5.3 d, RFC 2464 §4): A only then
      flags: PrefixFlag.onLink | (link.prefix.length === SLAAC_PREFIX_LENGTH ? PrefixFlag.autonomous : 0),
      validLifetime: RouterConstant.advValidLifetimeSeconds,
      preferredLifetime: RouterConstant.advPreferredLifetimeSeconds,
      reserved2: 0,
      prefix: link.prefix.address,
    });
  }
  const message = encodeRouterAdvertisement({ code: 0, curHopLimit: 0, flags: 0, routerLifetime: 0, reachableTime: 0, retransTimer: 0, options });
  return encodeIcmpv6Frame(to.mac, link.mac, { trafficClass: 0, flowLabel: 0, hopLimit: RouterConstant.ndHopLimit, source: link.linkLocal, destination: to.address }, message);
}

/** Why a received frame is not answered; the label of diskless_ra_dropped_total. */
export type DropReason = 'truncated' | 'bad_field' | 'bad_checksum' | 'not_solicitation' | 'hop_limit' | 'code' | 'unspecified_with_slla' | 'rate_limited' | 'send_failed' | 'internal';

export type SolicitationVerdict =
  | { readonly ok: true; readonly solicitor: Destination; readonly multicastReply: boolean; readonly solicitorMac: Buffer }
  | { readonly ok: false; readonly reason: DropReason };

/**
 * Decodes and validates a frame as a Router Solicitation (RFC 4861 §6.1.1: hop limit 255,
 * valid checksum, code 0, length ≥ 8, no zero-length option, no SLLA option when the source is
 * unspecified) and says where the answer goes (§6.2.6): unicast to the solicitor when its
 * source is specified (to the SLLA's MAC, else the frame's Ethernet source), else ff02::1.
 */
export function checkRouterSolicitation(frame: Buffer): SolicitationVerdict {
  let decoded;
  let options: readonly NdpOption[];
  try {
    decoded = decodeIcmpv6Frame(frame);
    if (decoded.icmpv6.type !== Icmpv6Type.routerSolicitation) return { ok: false, reason: 'not_solicitation' };
    options = decodeRouterSolicitation(decoded.icmpv6.message).options;
  } catch (err) {
    if (isDisklessError(err, 'WIRE_TRUNCATED')) return { ok: false, reason: 'truncated' };
    if (isDisklessError(err, 'WIRE_BAD_CHECKSUM')) return { ok: false, reason: 'bad_checksum' };
    if (isDisklessError(err)) return { ok: false, reason: 'bad_field' };
    throw err;
  }
  if (decoded.ipv6.hopLimit !== RouterConstant.ndHopLimit) return { ok: false, reason: 'hop_limit' };
  if (decoded.icmpv6.code !== 0) return { ok: false, reason: 'code' };
  const slla = options.find((o) => o.kind === 'sourceLinkLayerAddress');
  const unspecified = isUnspecified(decoded.ipv6.source);
  if (unspecified && slla) return { ok: false, reason: 'unspecified_with_slla' };
  if (unspecified) return { ok: true, solicitor: allNodesDestination(), multicastReply: true, solicitorMac: Buffer.from(decoded.sourceMac) };
  const mac = slla && slla.kind === 'sourceLinkLayerAddress' && slla.address.length >= 6 ? slla.address.subarray(0, 6) : decoded.sourceMac;
  return { ok: true, solicitor: { mac: Buffer.from(mac), address: Buffer.from(decoded.ipv6.source) }, multicastReply: false, solicitorMac: Buffer.from(decoded.sourceMac) };
}

/**
 * Milliseconds until the next unsolicited RA after `sent` have gone out (§6.2.4): the first
 * MAX_INITIAL_RTR_ADVERTISEMENTS come `initialIntervalMs` apart (at most
 * MAX_INITIAL_RTR_ADVERT_INTERVAL), then uniformly between MinRtrAdvInterval (0.33 × Max, at
 * least 3 s, §6.2.1) and MaxRtrAdvInterval = `intervalSeconds`. `random` is in [0, 1).
 */
export function unsolicitedDelayMs(sent: number, intervalSeconds: number, initialIntervalMs: number, random: () => number): number {
  const maxMs = intervalSeconds * 1000;
  const minMs = Math.min(maxMs, Math.max(3000, 0.33 * maxMs));
  const regular = minMs + random() * (maxMs - minMs);
  if (sent < RouterConstant.maxInitialRtrAdvertisements) return Math.min(initialIntervalMs, RouterConstant.maxInitialRtrAdvertIntervalMs, regular);
  return regular;
}

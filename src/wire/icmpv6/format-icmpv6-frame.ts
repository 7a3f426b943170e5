import { macToString } from '../ethernet/ethernet-frame.js';
import { formatIpv6Address } from '../ipv6/ipv6-address.js';
import { Icmpv6Type, type Icmpv6Frame } from './icmpv6-message.js';
import { PrefixFlag, type NdpOption } from './ndp-options.js';
import { decodeRouterAdvertisement, decodeRouterSolicitation, RouterAdvertisementFlag } from './router-discovery.js';

/**
 * A readable, stable, multi-line dump of an ICMPv6 frame, decoding router solicitations and
 * advertisements field by field: the golden files under testdata/ and debug logs. Pure.
 */
export function formatIcmpv6Frame(frame: Icmpv6Frame): string {
  const { ipv6, icmpv6 } = frame;
  const lines = [
    `ethernet ${macToString(frame.sourceMac)} > ${macToString(frame.destinationMac)}`,
    `ipv6 ${formatIpv6Address(ipv6.source)} > ${formatIpv6Address(ipv6.destination)} hopLimit=${ipv6.hopLimit} trafficClass=0x${ipv6.trafficClass.toString(16)} flowLabel=0x${ipv6.flowLabel.toString(16)} payloadLength=${ipv6.payloadLength}`,
  ];
  const name = Object.entries(Icmpv6Type).find(([, v]) => v === icmpv6.type)?.[0] ?? 'unknown';
  lines.push(`icmpv6 type=${icmpv6.type} (${name}) code=${icmpv6.code} checksum=0x${icmpv6.checksum.toString(16).padStart(4, '0')}`);
  let options: readonly NdpOption[] = [];
  if (icmpv6.type === Icmpv6Type.routerSolicitation) {
    const rs = decodeRouterSolicitation(icmpv6.message);
    lines.push(`  reserved=${rs.reserved}`);
    options = rs.options;
  } else if (icmpv6.type === Icmpv6Type.routerAdvertisement) {
    const ra = decodeRouterAdvertisement(icmpv6.message);
    const flags = [ra.flags & RouterAdvertisementFlag.managed ? 'M' : '', ra.flags & RouterAdvertisementFlag.other ? 'O' : ''].filter(Boolean).join('') || '-';
    lines.push(`  curHopLimit=${ra.curHopLimit} flags=0x${ra.flags.toString(16)} (${flags}) routerLifetime=${ra.routerLifetime} reachableTime=${ra.reachableTime} retransTimer=${ra.retransTimer}`);
    options = ra.options;
  } else {
    lines.push(`  body ${icmpv6.message.subarray(4).toString('hex')}`);
  }
  for (const o of options) lines.push(`  option ${formatNdpOption(o)}`);
  return lines.join('\n');
}

/** One option on one line. */
export function formatNdpOption(o: NdpOption): string {
  switch (o.kind) {
    case 'sourceLinkLayerAddress':
    case 'targetLinkLayerAddress':
      return `${o.kind} ${o.address.length === 6 ? macToString(o.address) : o.address.toString('hex')}`;
    case 'prefixInformation': {
      const f = [o.flags & PrefixFlag.onLink ? 'L' : '', o.flags & PrefixFlag.autonomous ? 'A' : ''].filter(Boolean).join('') || '-';
      return `prefixInformation ${formatIpv6Address(o.prefix)}/${o.prefixLength} flags=0x${o.flags.toString(16)} (${f}) valid=${o.validLifetime} preferred=${o.preferredLifetime}`;
    }
    case 'mtu':
      return `mtu ${o.mtu}`;
    case 'unknown':
      return `type ${o.type} data ${o.data.toString('hex')}`;
  }
}

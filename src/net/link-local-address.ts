/**
 * The IPv6 link-local address an interface answers to, for servers that build whole IPv6
 * frames themselves (the RA server's source address, RFC 4861 §4.2 "MUST be the link-local
 * address assigned to the interface"). Reads the kernel's own from /proc/net/if_inet6 when it
 * has one, else derives the modified EUI-64 address from the MAC (RFC 4291 App. A), which is
 * what the kernel would have chosen with addr_gen_mode 0. Called once per interface at start.
 */
import { readFileSync } from 'node:fs';
import { linkLocalFromMac } from '../wire/ipv6/ipv6-address.js';

/** /proc/net/if_inet6 scope value of link-local addresses (IPV6_ADDR_LINKLOCAL). */
const SCOPE_LINK = 0x20;
/** IFA_F_* flags that make an address unusable as a source. */
const IfaFlag = { dadFailed: 0x08, tentative: 0x40 } as const;

export interface KernelIpv6Address {
  /** 16 bytes. */
  readonly address: Buffer;
  readonly ifindex: number;
  readonly prefixLength: number;
  readonly scope: number;
  readonly flags: number;
  readonly ifname: string;
}

/** Parses /proc/net/if_inet6 text ("addr32hex ifindex plen scope flags ifname" per line). Malformed lines are skipped. */
export function parseIfInet6(text: string): KernelIpv6Address[] {
  const out: KernelIpv6Address[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 6 || !/^[0-9a-f]{32}$/i.test(f[0]!) || !f.slice(1, 5).every((x) => /^[0-9a-f]+$/i.test(x))) continue;
    out.push({
      address: Buffer.from(f[0]!, 'hex'),
      ifindex: parseInt(f[1]!, 16),
      prefixLength: parseInt(f[2]!, 16),
      scope: parseInt(f[3]!, 16),
      flags: parseInt(f[4]!, 16),
      ifname: f[5]!,
    });
  }
  return out;
}

/**
 * The kernel's usable link-local address on `ifindex` (not tentative, DAD not failed), or
 * undefined when it has none (IPv6 disabled on the link, or still in DAD) or /proc is absent.
 */
export function kernelLinkLocalAddress(ifindex: number, ifInet6Text?: string): Buffer | undefined {
  let text = ifInet6Text;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/net/if_inet6', 'utf8');
    } catch {
      return undefined;
    }
  }
  const usable = parseIfInet6(text).find((a) => a.ifindex === ifindex && a.scope === SCOPE_LINK && (a.flags & (IfaFlag.tentative | IfaFlag.dadFailed)) === 0);
  return usable?.address;
}

/** The kernel's link-local address on the interface, else the EUI-64 one of its MAC. */
export function linkLocalAddressOf(ifindex: number, mac: Buffer): Buffer {
  return kernelLinkLocalAddress(ifindex) ?? linkLocalFromMac(mac);
}

/**
 * The SendTargets text command (RFC 7143 Appendix C, §13.25-13.26 keys TargetName and
 * TargetAddress): which targets an initiator sees and where, split into Text Response
 * pieces no longer than the initiator's MaxRecvDataSegmentLength. Pure.
 */
import { encodeTextKeys, type TextPair } from '../../wire/iscsi/text-keys.js';
import type { TargetListing } from './target-resolver.js';

/** `ip:port` as TargetAddress wants it: IPv6 in brackets (§13.8). */
export function portalAddress(ip: string, port: number): string {
  const bare = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/**
 * Answer pairs for `SendTargets=<value>`. Discovery sessions answer `All` with every listed
 * target; any session answers a target name with that target if listed; an empty value in a
 * Normal session means the session's own target (Appendix C). Null when the value asks for
 * something this session may not see (the caller answers SendTargets=Reject).
 */
export function sendTargetsAnswer(value: string, listings: readonly TargetListing[], ctx: { discovery: boolean; sessionTarget?: string; localPortal: string; portalGroupTag: number }): TextPair[] | null {
  let chosen: readonly TargetListing[];
  if (value === 'All') {
    if (!ctx.discovery) return null;
    chosen = listings;
  } else if (value === '') {
    if (ctx.discovery || ctx.sessionTarget === undefined) return null;
    chosen = listings.filter((t) => t.name === ctx.sessionTarget);
    if (chosen.length === 0) chosen = [{ name: ctx.sessionTarget }];
  } else {
    chosen = listings.filter((t) => t.name === value);
  }
  const out: TextPair[] = [];
  for (const t of chosen) {
    out.push({ key: 'TargetName', value: t.name });
    const addrs = t.addresses && t.addresses.length > 0 ? t.addresses : [ctx.localPortal];
    for (const a of addrs) out.push({ key: 'TargetAddress', value: `${a},${ctx.portalGroupTag}` });
  }
  return out;
}

/**
 * Splits encoded text into pieces of at most `max` bytes (§6.1: a key=value pair may be
 * split across PDUs; the initiator reassembles before parsing).
 */
export function splitText(pairs: readonly TextPair[], max: number): Buffer[] {
  const all = encodeTextKeys(pairs);
  if (all.length === 0) return [all];
  const out: Buffer[] = [];
  for (let off = 0; off < all.length; off += max) out.push(all.subarray(off, off + max));
  return out;
}

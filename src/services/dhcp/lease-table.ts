import { intToIpv4, ipv4ToInt } from '../../config/ipv4.js';

/**
 * The server's address book (RFC 2131 §4.3.1 allocation, §4.3.4 DECLINE, §4.3.6 RELEASE): who
 * holds which address until when, offers in flight, declined addresses. Pure and in memory:
 * every method takes `now` (ms since the epoch); `LeaseStore` persists `snapshot()`. One table
 * per server; the server calls it for each DISCOVER/REQUEST/DECLINE/RELEASE, so operations
 * are O(1) except `allocate`, which scans the pool (O(pool size)) only for a client with no
 * usable history.
 */

/** One client's hold on an address. */
export interface Lease {
  /** Client identity (RFC 2131 §4.2): option 61 in hex, or htype + chaddr in hex. */
  readonly clientKey: string;
  /** Client MAC, lower-case colon form. */
  readonly mac: string;
  readonly address: string;
  /**
   * offered: held between OFFER and REQUEST (memory only, never persisted); bound: ACKed;
   * released: the client gave it back (kept so the same client gets it again, reused last).
   */
  readonly state: 'offered' | 'bound' | 'released';
  /** ms since the epoch; an expired bound lease is free again but keeps its affinity. */
  readonly expiresAt: number;
  /** Option 12 as given by the client or the policy. */
  readonly hostname?: string;
}

/** A declined address (RFC 2131 §4.3.3: the client found it in use), unusable until `until`. */
export interface DeclinedAddress {
  readonly address: string;
  readonly until: number;
}

/** What `LeaseStore` writes and reads. */
export interface LeaseSnapshot {
  readonly leases: readonly Lease[];
  readonly declined: readonly DeclinedAddress[];
}

/** The address ranges the table allocates from. */
export interface LeaseTableOptions {
  /** Dynamic pool, inclusive. */
  readonly poolStart: string;
  readonly poolEnd: string;
  /** Never handed out from the pool: the server itself, reservations of other machines. */
  readonly excluded?: Iterable<string>;
}

export class LeaseTable {
  private readonly byClient = new Map<string, Lease>();
  private readonly byAddress = new Map<string, string>();
  private readonly declined = new Map<string, number>();
  private readonly excluded: Set<string>;
  private readonly start: number;
  private readonly end: number;

  constructor(options: LeaseTableOptions, snapshot?: LeaseSnapshot) {
    this.start = ipv4ToInt(options.poolStart);
    this.end = ipv4ToInt(options.poolEnd);
    this.excluded = new Set(options.excluded ?? []);
    for (const lease of snapshot?.leases ?? []) if (lease.state !== 'offered') this.put(lease);
    for (const d of snapshot?.declined ?? []) this.declined.set(d.address, d.until);
  }

  /** Adds an address the pool must skip (a reservation learnt from the policy). */
  exclude(address: string): void {
    this.excluded.add(address);
  }

  /** The client's record, whatever its state or expiry. */
  leaseOf(clientKey: string): Lease | undefined {
    return this.byClient.get(clientKey);
  }

  /** The record holding `address`, whatever its state or expiry. */
  holderOf(address: string): Lease | undefined {
    const key = this.byAddress.get(address);
    return key === undefined ? undefined : this.byClient.get(key);
  }

  /** True when `address` lies in the dynamic pool. */
  inPool(address: string): boolean {
    const n = ipv4ToInt(address);
    return n >= this.start && n <= this.end;
  }

  /** True while `address` is declined. */
  isDeclined(address: string, now: number): boolean {
    const until = this.declined.get(address);
    return until !== undefined && until > now;
  }

  /**
   * True when `clientKey` may take `address` now: no other client holds it (an unexpired
   * offer or bound lease), it is not declined, and it is not excluded unless `reserved` (the
   * policy reserved it for this very client).
   */
  isAvailable(address: string, clientKey: string, now: number, reserved = false): boolean {
    if (this.isDeclined(address, now)) return false;
    if (this.excluded.has(address) && !reserved) return false;
    const holder = this.holderOf(address);
    return !holder || holder.clientKey === clientKey || !this.isActive(holder, now);
  }

  /**
   * Picks an address for a client without a reservation (RFC 2131 §4.3.1): its current or
   * previous address if still available, else the requested one (option 50) if in the pool and
   * available, else a never-used pool address, else the address whose lease expired longest
   * ago (expired and released leases are reused last). Undefined: the pool is exhausted.
   */
  allocate(clientKey: string, now: number, requested?: string): string | undefined {
    const own = this.byClient.get(clientKey);
    if (own && this.inPool(own.address) && this.isAvailable(own.address, clientKey, now)) return own.address;
    if (requested && this.inPool(requested) && this.isAvailable(requested, clientKey, now)) return requested;
    let oldest: Lease | undefined;
    for (let n = this.start; n <= this.end; n++) {
      const address = intToIpv4(n);
      if (this.excluded.has(address) || this.isDeclined(address, now)) continue;
      const holder = this.holderOf(address);
      if (!holder) return address;
      if (!this.isActive(holder, now) && (!oldest || holder.expiresAt < oldest.expiresAt)) oldest = holder;
    }
    return oldest?.address;
  }

  /** Holds `address` for the client until `now + holdMs` (never shortens a bound lease). */
  offer(clientKey: string, mac: string, address: string, now: number, holdMs: number): Lease {
    const own = this.byClient.get(clientKey);
    if (own && own.address === address && own.state === 'bound' && own.expiresAt > now) return own;
    return this.put({ clientKey, mac, address, state: 'offered', expiresAt: now + holdMs });
  }

  /** Binds (ACK) `address` to the client until `now + leaseMs`; drops its other records. */
  bind(clientKey: string, mac: string, address: string, now: number, leaseMs: number, hostname?: string): Lease {
    return this.put({ clientKey, mac, address, state: 'bound', expiresAt: now + leaseMs, ...(hostname ? { hostname } : {}) });
  }

  /**
   * Forgets an offer the client did not take (it chose another server: RFC 2131 §4.3.2). A
   * bound or released record stays.
   */
  withdrawOffer(clientKey: string): void {
    const own = this.byClient.get(clientKey);
    if (own?.state === 'offered') this.remove(own);
  }

  /** RELEASE (RFC 2131 §4.3.6): the address is free now; the record keeps the affinity. Returns false when the client did not hold it. */
  release(clientKey: string, address: string, now: number): boolean {
    const own = this.byClient.get(clientKey);
    if (!own || own.address !== address || own.state === 'offered') return false;
    this.put({ ...own, state: 'released', expiresAt: Math.min(own.expiresAt, now) });
    return true;
  }

  /** DECLINE (RFC 2131 §4.3.3): nobody gets `address` until `now + holdMs`; the client's record goes. */
  decline(clientKey: string, address: string, now: number, holdMs: number): void {
    const own = this.byClient.get(clientKey);
    if (own && own.address === address) this.remove(own);
    this.declined.set(address, now + holdMs);
  }

  /** What to persist: bound and released leases, declines still in force. */
  snapshot(now: number): LeaseSnapshot {
    const leases = [...this.byClient.values()].filter((l) => l.state !== 'offered').sort((a, b) => ipv4ToInt(a.address) - ipv4ToInt(b.address));
    const declined = [...this.declined].filter(([, until]) => until > now).map(([address, until]) => ({ address, until }));
    return { leases, declined };
  }

  /** Number of unexpired bound leases (a gauge). */
  activeCount(now: number): number {
    let n = 0;
    for (const l of this.byClient.values()) if (l.state === 'bound' && l.expiresAt > now) n++;
    return n;
  }

  private isActive(lease: Lease, now: number): boolean {
    return lease.state !== 'released' && lease.expiresAt > now;
  }

  private put(lease: Lease): Lease {
    const previous = this.byClient.get(lease.clientKey);
    if (previous && previous.address !== lease.address && this.byAddress.get(previous.address) === lease.clientKey) this.byAddress.delete(previous.address);
    const other = this.byAddress.get(lease.address);
    if (other !== undefined && other !== lease.clientKey) this.byClient.delete(other);
    this.byClient.set(lease.clientKey, lease);
    this.byAddress.set(lease.address, lease.clientKey);
    return lease;
  }

  private remove(lease: Lease): void {
    this.byClient.delete(lease.clientKey);
    if (this.byAddress.get(lease.address) === lease.clientKey) this.byAddress.delete(lease.address);
  }
}

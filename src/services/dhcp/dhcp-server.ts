import { createSocket, type Socket } from 'node:dgram';
import type { Config } from '../../config/schema.js';
import { intToIpv4, parseCidr } from '../../config/ipv4.js';
import { isDisklessError } from '../../errors/index.js';
import { openRawSocket } from '../../net/open-raw-socket.js';
import type { RawSocket, RawSocketOptions } from '../../net/raw-socket.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import { DhcpOption, DhcpPort } from '../../wire/dhcp/dhcp-constants.js';
import { decodeDhcpMessage, encodeDhcpMessage } from '../../wire/dhcp/dhcp-message.js';
import { decodeEthernetFrame, encodeEthernetFrame, EtherType, macToBuffer } from '../../wire/ethernet/ethernet-frame.js';
import { decodeIpv4Udp, encodeIpv4Udp } from '../../wire/ipv4-udp/ipv4-udp.js';
import type { Service } from '../service.js';
import type { BootDecision, BootPolicy } from './boot-policy.js';
import { dhcpServerFilter } from './dhcp-bpf.js';
import { DHCP_ENGINE_DEFAULTS, DhcpEngine, type DhcpDropReason, type DhcpOutcome, type InspectedRequest } from './dhcp-engine.js';
import { LeaseStore } from './lease-store.js';
import { LeaseTable } from './lease-table.js';
import { BROADCAST_ADDRESS, type ReplyDestination } from './reply-destination.js';

/**
 * The DHCPv4 server (authoritative or proxyDHCP, RFC 2131 / RFC 4578 / PXE 2.1): one raw
 * AF_PACKET socket per configured interface receives UDP to ports 67 and 4011 (a BPF filter
 * drops the rest in the kernel) and sends whole Ethernet/IPv4/UDP frames back on the arrival
 * interface, so it answers clients without addresses and only on those interfaces. Two UDP
 * sockets (0.0.0.0:67 and serverAddress:4011) keep the kernel from answering unicast requests
 * with ICMP port-unreachable, and send the replies that go through routing (relays, port-4011
 * clients). Decisions are DhcpEngine's; leases persist in `<dataDir>/dhcp-leases.json`.
 */
export interface DhcpServerOptions {
  /** The config's `dhcp` section (`bootFiles` is the BootPolicy's business, see control/boot-file.ts). */
  readonly config: { readonly dhcp: Config['dhcp']; readonly bootFiles?: Config['bootFiles'] };
  /** This server's address on the boot segment: option 54, source of every reply. */
  readonly serverAddress: string;
  /** Leases live in `<dataDir>/dhcp-leases.json`. */
  readonly dataDir: string;
  /** Asked once per DISCOVER, REQUEST, INFORM and port-4011 request; null keeps the server silent. */
  readonly policy: BootPolicy;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Opens the raw socket of one interface (tests inject; default `openRawSocket`). */
  readonly openSocket?: (options: RawSocketOptions) => RawSocket;
  /** Addresses the dynamic pool must skip: reservations of other machines (nodes' `ip`). */
  readonly reservedAddresses?: readonly string[];
  /** Bind the UDP sockets on 67 and 4011 (default true; a failure to bind 67 only warns). */
  readonly bindUdp?: boolean;
  /** Clock, ms since the epoch (tests). Default Date.now. */
  readonly now?: () => number;
  /** How long an OFFER holds its address, ms. */
  readonly offerHoldMs?: number;
  /** How long a DECLINEd address stays out of the pool, ms. */
  readonly declineHoldMs?: number;
}

/** Metric names. */
export const DhcpMetric = {
  dropped: 'diskless_dhcp_dropped_total',
  requests: 'diskless_dhcp_requests_total',
  replies: 'diskless_dhcp_replies_total',
  activeLeases: 'diskless_dhcp_leases_active',
} as const;

const SERVER_TTL = 64;

export class DhcpServer implements Service {
  readonly name = 'dhcp';
  private readonly now: () => number;
  private readonly store: LeaseStore;
  private engine: DhcpEngine | undefined;
  private readonly sockets: RawSocket[] = [];
  private udp67: Socket | undefined;
  private udp4011: Socket | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;

  constructor(private readonly options: DhcpServerOptions) {
    this.now = options.now ?? Date.now;
    this.store = new LeaseStore(options.dataDir);
  }

  /** The lease table (read-only use: status pages, tests). Undefined before start. */
  get leases(): LeaseTable | undefined {
    return this.engine?.table;
  }

  /** Loads leases, opens one raw socket per interface and the UDP sockets; resolves when answering. */
  async start(): Promise<void> {
    const { dhcp } = this.options.config;
    if (this.running || dhcp.mode === 'off') return;
    const snapshot = await this.store.load();
    this.engine = new DhcpEngine(
      {
        mode: dhcp.mode,
        serverAddress: this.options.serverAddress,
        subnet: dhcp.subnet,
        poolStart: dhcp.pool.start,
        poolEnd: dhcp.pool.end,
        ...(dhcp.router ? { router: dhcp.router } : {}),
        dns: dhcp.dns,
        ...(dhcp.domain ? { domain: dhcp.domain } : {}),
        leaseTimeSeconds: dhcp.leaseTime,
        offerHoldMs: this.options.offerHoldMs ?? DHCP_ENGINE_DEFAULTS.offerHoldMs,
        declineHoldMs: this.options.declineHoldMs ?? DHCP_ENGINE_DEFAULTS.declineHoldMs,
        reservedAddresses: this.options.reservedAddresses ?? [],
      },
      new LeaseTable({ poolStart: dhcp.pool.start, poolEnd: dhcp.pool.end }, snapshot),
    );
    try {
      const open = this.options.openSocket ?? openRawSocket;
      for (const ifname of dhcp.interfaces) {
        const socket = open({ ifname, etherType: EtherType.ipv4, filter: dhcpServerFilter() });
        this.sockets.push(socket);
        socket.onError?.((err) => this.options.log.warn({ err, ifname }, 'dhcp raw socket receive error'));
        socket.onFrame((frame) => this.track(this.onFrame(socket, frame)));
      }
      if (this.options.bindUdp !== false) {
        this.udp67 = await this.bindUdp('0.0.0.0', DhcpPort.server, false);
        this.udp4011 = await this.bindUdp(this.options.serverAddress, DhcpPort.pxe, dhcp.mode === 'proxy');
      }
    } catch (err) {
      this.closeSockets();
      throw err;
    }
    this.running = true;
    this.options.metrics.set(DhcpMetric.activeLeases, this.engine.table.activeCount(this.now()));
    this.options.log.info({ mode: dhcp.mode, interfaces: dhcp.interfaces, leases: snapshot.leases.length }, 'dhcp server listening');
  }

  /** Closes the sockets, waits for in-flight requests and lease writes. Safe twice. */
  async stop(): Promise<void> {
    this.running = false;
    this.closeSockets();
    await Promise.allSettled([...this.inFlight]);
    await this.store.flush();
  }

  private async bindUdp(address: string, port: number, required: boolean): Promise<Socket | undefined> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    // The raw sockets see every request; these only exist so unicast requests are not
    // answered with ICMP port-unreachable, and to send routed replies.
    socket.on('message', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address, port, exclusive: false }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      if (required) throw err;
      this.options.log.warn({ err, address, port }, 'dhcp: cannot bind UDP socket; unicast requests may get ICMP port-unreachable');
      return undefined;
    }
    socket.on('error', (err) => this.options.log.warn({ err, port }, 'dhcp udp socket error'));
    socket.setBroadcast(true);
    return socket;
  }

  private closeSockets(): void {
    for (const s of this.sockets.splice(0)) s.close();
    for (const s of [this.udp67, this.udp4011]) s?.close();
    this.udp67 = this.udp4011 = undefined;
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private drop(reason: DhcpDropReason, detail?: unknown): void {
    this.options.metrics.inc(DhcpMetric.dropped, { reason }, 1, 'DHCP packets dropped, by reason');
    this.options.log.debug({ reason, detail }, 'dhcp packet dropped');
  }

  /** One frame from the raw socket of `socket.ifname`. Never throws. */
  private async onFrame(socket: RawSocket, frame: Buffer): Promise<void> {
    const engine = this.engine;
    if (!engine || !this.running) return;
    let inspected: InspectedRequest;
    try {
      const eth = decodeEthernetFrame(frame);
      if (eth.etherType !== EtherType.ipv4 || eth.vlan !== undefined) return this.drop('not-for-us');
      const ip = decodeIpv4Udp(eth.payload, { acceptPartialUdpChecksum: true });
      if (!this.addressedToUs(ip.destination) || (ip.destinationPort !== DhcpPort.server && ip.destinationPort !== DhcpPort.pxe)) {
        return this.drop('not-for-us', `${ip.destination}:${ip.destinationPort}`);
      }
      const message = decodeDhcpMessage(ip.payload);
      this.options.log.debug({ ifname: socket.ifname, source: ip.source, xid: message.xid, type: message.options.get(DhcpOption.messageType)?.[0] }, 'dhcp request');
      const result = engine.inspect(message, { port: ip.destinationPort, sourceAddress: ip.source, sourcePort: ip.sourcePort });
      if ('drop' in result) return this.drop(result.drop);
      inspected = result;
    } catch (err) {
      if (isDisklessError(err)) return this.drop('malformed', err.code);
      this.options.log.error({ err }, 'dhcp: unexpected error decoding a frame');
      return this.drop('malformed');
    }
    this.options.metrics.inc(DhcpMetric.requests, { type: String(inspected.type) }, 1, 'DHCP requests accepted, by message type');
    let decision: BootDecision | null = null;
    if (inspected.needsPolicy) {
      try {
        decision = await this.options.policy.resolve(engine.bootClient(inspected, socket.ifname));
      } catch (err) {
        this.options.log.error({ err, mac: inspected.mac }, 'dhcp: boot policy failed');
        return this.drop('policy-ignored', 'policy threw');
      }
    }
    if (!this.running) return;
    let outcome: DhcpOutcome;
    try {
      outcome = engine.respond(inspected, decision, this.now());
    } catch (err) {
      this.options.log.error({ err, mac: inspected.mac }, 'dhcp: cannot build a reply');
      return this.drop(isDisklessError(err) ? 'malformed' : 'bad-request', (err as Error).message);
    }
    if (outcome.action === 'drop') return this.drop(outcome.reason, outcome.detail);
    if (outcome.persist) {
      try {
        await this.store.save(engine.table.snapshot(this.now()));
        this.options.metrics.set(DhcpMetric.activeLeases, engine.table.activeCount(this.now()), {}, 'unexpired bound DHCP leases');
      } catch (err) {
        // No ACK for a lease we could not make durable: the client retries.
        this.options.log.error({ err }, 'dhcp: cannot write the lease file');
        return this.drop('send-failed', 'lease file write failed');
      }
    }
    this.options.log.debug({ event: outcome.event, mac: inspected.mac, ifname: socket.ifname }, 'dhcp');
    if (outcome.action === 'reply') this.send(socket, outcome);
  }

  private addressedToUs(destination: string): boolean {
    if (destination === BROADCAST_ADDRESS || destination === this.options.serverAddress) return true;
    const subnet = parseCidr(this.options.config.dhcp.subnet);
    return destination === intToIpv4((subnet.network | ~subnet.mask) >>> 0);
  }

  private send(socket: RawSocket, outcome: Extract<DhcpOutcome, { action: 'reply' }>): void {
    const type = String(outcome.reply.options.get(DhcpOption.messageType)?.[0] ?? 0);
    try {
      const maxLength = Math.min(outcome.maxLength, socket.mtu - 28);
      const payload = encodeDhcpMessage(outcome.reply, { maxLength });
      this.sendPayload(socket, outcome.destination, payload);
      this.options.metrics.inc(DhcpMetric.replies, { type }, 1, 'DHCP replies sent, by message type');
    } catch (err) {
      this.options.log.warn({ err, destination: outcome.destination }, 'dhcp: cannot send reply');
      this.drop('send-failed');
    }
  }

  /** Raw frame on the arrival interface, or the kernel: relays (to port 67) from :67, port-4011 clients from :4011. */
  private sendPayload(socket: RawSocket, to: ReplyDestination, payload: Buffer): void {
    if (to.via === 'udp') {
      const udp = to.port === DhcpPort.server ? this.udp67 : this.udp4011;
      if (!udp) throw new Error(`no UDP socket to send to ${to.address}:${to.port}`);
      udp.send(payload, to.port, to.address);
      return;
    }
    const ip = encodeIpv4Udp({ source: this.options.serverAddress, destination: to.address, sourcePort: DhcpPort.server, destinationPort: to.port, ttl: SERVER_TTL, payload });
    socket.send(encodeEthernetFrame(macToBuffer(to.mac!), socket.mac, EtherType.ipv4, ip));
  }
}

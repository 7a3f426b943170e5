/**
 * The iSCSI target (RFC 7143 over TCP): accepts connections, gives each an IscsiConnection,
 * allocates TSIHs, and resolves targets through the injected TargetResolver. Many
 * concurrent sessions; one connection per session (MaxConnections=1). Keeps the session
 * registry: a new login with the same initiator, ISID and target reinstates (drops) the old
 * session (§6.3.5), and resets reach every session of a target. On stop it asks each
 * initiator to log out (Async Message) and waits a grace period before closing.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { DisklessError } from '../../errors/index.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import type { Service } from '../service.js';
import { ReadBufferPool } from './read-buffer-pool.js';
import { IscsiConnection } from './iscsi-connection.js';
import { DEFAULT_TARGET_LIMITS, type TargetLimits } from './operational-keys.js';
import type { ChapCredentials, TargetResolver } from './target-resolver.js';
import { quickAcker } from '../../net/tcp-quick-ack.js';
import { hardwareCrc32c } from '../../net/crc32c-hardware.js';
import { Crc32c } from '../../wire/checksum/crc32c.js';
import type { EstablishedSession } from './login-negotiator.js';

/** Options of `new IscsiServer(...)`; see ISCSI_SERVER_DEFAULTS for the optional ones. */
export interface IscsiServerOptions {
  /** Listen address (config `iscsi.address`). */
  readonly address: string;
  /** Listen port (config `iscsi.port`); 0 picks a free port (read `port` after start). */
  readonly port: number;
  /** Which targets exist, who may see them, and their volumes. */
  readonly targets: TargetResolver;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Target portal group tag of this portal (§13.9). */
  readonly portalGroupTag?: number;
  /** The target's side of operational negotiation. */
  readonly limits?: Partial<TargetLimits>;
  /** CHAP required for discovery sessions; unset = open discovery. */
  readonly discoveryChap?: ChapCredentials;
  /** Commands an initiator may have outstanding (MaxCmdSN - ExpCmdSN + 1). */
  readonly commandWindow?: number;
  /** A connection that has not completed login by then is closed. */
  readonly loginTimeoutMs?: number;
  /** What the target answers a discovery initiator's challenge with (mutual CHAP); needs discoveryChap. */
  readonly discoveryMutualChap?: ChapCredentials;
  /** Idle time before a NOP-In ping (dead-peer detection); 0 disables. */
  readonly nopInIntervalMs?: number;
  /** Time an unanswered ping may wait before the connection is dropped. */
  readonly nopInTimeoutMs?: number;
  /** On stop: how long initiators asked to log out (Async Message) get before their connections close; 0 closes at once. */
  readonly shutdownGraceMs?: number;
}

export const ISCSI_SERVER_DEFAULTS = {
  portalGroupTag: 1,
  limits: DEFAULT_TARGET_LIMITS,
  commandWindow: 64,
  loginTimeoutMs: 30_000,
  nopInIntervalMs: 30_000,
  nopInTimeoutMs: 15_000,
  shutdownGraceMs: 2_000,
} as const;

/** Largest TSIH (16 bits; 0 is reserved for "new session", §11.12.7). */
const MAX_TSIH = 0xffff;

export class IscsiServer implements Service {
  /** TCP_QUICKACK setter, resolved once (a no-op without the native addon). */
  private readonly acknowledgeNow = quickAcker();
  /** READ buffers shared by this server's connections, reused once written (read-buffer-pool.ts). */
  private readonly readBuffers = new ReadBufferPool();
  readonly name = 'iscsi';
  private server: Server | null = null;
  private readonly connections = new Set<IscsiConnection>();
  private readonly liveTsihs = new Set<number>();
  private nextTsih = 1;
  private boundPort = 0;
  /** One digest function for all connections (tables or the SSE4.2 instruction). */
  private readonly crc = new Crc32c(hardwareCrc32c());
  private readonly registry = {
    established: (conn: IscsiConnection, s: EstablishedSession) => this.reinstate(conn, s),
    peers: (targetName: string) => [...this.connections].filter((c) => !c.isClosed && c.established?.targetName === targetName),
  };

  constructor(private readonly options: IscsiServerOptions) {}

  /** The port actually bound (useful with port 0), 0 before start. */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new DisklessError('ISCSI_LISTEN', `cannot listen on ${this.options.address}:${this.options.port}: ${err.code ?? err.message}`, { address: this.options.address, port: this.options.port, errno: err.code }, { cause: err })),
      );
      server.listen(this.options.port, this.options.address, () => resolve());
    });
    server.on('error', (err) => this.options.log.error({ err: err.message }, 'iscsi listener error'));
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : this.options.port;
    this.server = server;
    this.options.log.info({ address: this.options.address, port: this.boundPort }, 'iscsi target listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const grace = this.options.shutdownGraceMs ?? ISCSI_SERVER_DEFAULTS.shutdownGraceMs;
    let asked = 0;
    for (const c of this.connections) {
      if (grace > 0 && c.requestLogout(Math.ceil(grace / 1000))) asked++;
      else c.destroy();
    }
    if (asked > 0) {
      const deadline = Date.now() + grace;
      while (Date.now() < deadline && [...this.connections].some((c) => !c.isClosed)) await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of this.connections) c.destroy();
    await closed;
    this.connections.clear();
  }

  private accept(socket: Socket): void {
    const o = this.options;
    const metrics = o.metrics;
    const conn = new IscsiConnection(socket, {
      log: o.log,
      metrics,
      loginTimeoutMs: o.loginTimeoutMs ?? ISCSI_SERVER_DEFAULTS.loginTimeoutMs,
      login: {
        resolver: o.targets,
        limits: { ...ISCSI_SERVER_DEFAULTS.limits, ...o.limits },
        portalGroupTag: o.portalGroupTag ?? ISCSI_SERVER_DEFAULTS.portalGroupTag,
        ...(o.discoveryChap ? { discoveryChap: o.discoveryChap } : {}),
        ...(o.discoveryMutualChap ? { discoveryMutualChap: o.discoveryMutualChap } : {}),
        tsihLive: (tsih) => this.liveTsihs.has(tsih),
        randomBytes: (n) => randomBytes(n),
        allocateTsih: () => this.allocateTsih(),
        commandWindow: o.commandWindow ?? ISCSI_SERVER_DEFAULTS.commandWindow,
      },
      acknowledgeNow: this.acknowledgeNow,
      crc: this.crc,
      readBuffers: this.readBuffers,
      nopInIntervalMs: o.nopInIntervalMs ?? ISCSI_SERVER_DEFAULTS.nopInIntervalMs,
      nopInTimeoutMs: o.nopInTimeoutMs ?? ISCSI_SERVER_DEFAULTS.nopInTimeoutMs,
      sessions: this.registry,
      onClose: (tsih) => {
        if (tsih !== undefined) this.liveTsihs.delete(tsih);
        this.connections.delete(conn);
        metrics.set('diskless_iscsi_connections', this.connections.size);
      },
    });
    this.connections.add(conn);
    metrics.set('diskless_iscsi_connections', this.connections.size, {}, 'open iSCSI connections');
  }

  /**
   * Session reinstatement (§6.3.5): a completed login whose initiator name, ISID and target
   * match a live session replaces it; the old connection is closed and its tasks aborted.
   * iPXE and then the booted OS log in with the same name in a row: this is that case.
   */
  private reinstate(conn: IscsiConnection, s: EstablishedSession): void {
    for (const other of this.connections) {
      const o = other.established;
      if (other === conn || !o || other.isClosed) continue;
      if (o.initiatorName === s.initiatorName && o.isid === s.isid && o.targetName === s.targetName && o.type === s.type) {
        this.options.log.info({ initiator: s.initiatorName, isid: s.isid.toString(16), oldTsih: o.tsih, tsih: s.tsih }, 'iscsi session reinstated');
        this.options.metrics.inc('diskless_iscsi_reinstatements_total');
        other.destroy();
      }
    }
  }

  private allocateTsih(): number {
    for (let i = 0; i < MAX_TSIH; i++) {
      const t = this.nextTsih;
      this.nextTsih = t >= MAX_TSIH ? 1 : t + 1;
      if (!this.liveTsihs.has(t)) {
        this.liveTsihs.add(t);
        return t;
      }
    }
    // 65535 live sessions: reuse is the lesser evil; the connection limit of the host comes first.
    return this.nextTsih;
  }
}

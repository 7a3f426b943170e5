/**
 * The iSCSI target (RFC 7143 over TCP): accepts connections, gives each an IscsiConnection,
 * allocates TSIHs, and resolves targets through the injected TargetResolver. Many
 * concurrent sessions; one connection per session (MaxConnections=1).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { DisklessError } from '../../errors/index.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import type { Service } from '../service.js';
import { IscsiConnection } from './iscsi-connection.js';
import { DEFAULT_TARGET_LIMITS, type TargetLimits } from './operational-keys.js';
import type { ChapCredentials, TargetResolver } from './target-resolver.js';
import { quickAcker } from '../../net/tcp-quick-ack.js';

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
}

export const ISCSI_SERVER_DEFAULTS = {
  portalGroupTag: 1,
  limits: DEFAULT_TARGET_LIMITS,
  commandWindow: 64,
  loginTimeoutMs: 30_000,
} as const;

/** Largest TSIH (16 bits; 0 is reserved for "new session", §11.12.7). */
const MAX_TSIH = 0xffff;

export class IscsiServer implements Service {
  /** TCP_QUICKACK setter, resolved once (a no-op without the native addon). */
  private readonly acknowledgeNow = quickAcker();
  readonly name = 'iscsi';
  private server: Server | null = null;
  private readonly connections = new Set<IscsiConnection>();
  private readonly liveTsihs = new Set<number>();
  private nextTsih = 1;
  private boundPort = 0;

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
    for (const c of this.connections) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
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
        randomBytes: (n) => randomBytes(n),
        allocateTsih: () => this.allocateTsih(),
        commandWindow: o.commandWindow ?? ISCSI_SERVER_DEFAULTS.commandWindow,
      },
      acknowledgeNow: this.acknowledgeNow,
      onClose: (tsih) => {
        if (tsih !== undefined) this.liveTsihs.delete(tsih);
        this.connections.delete(conn);
        metrics.set('diskless_iscsi_connections', this.connections.size);
      },
    });
    this.connections.add(conn);
    metrics.set('diskless_iscsi_connections', this.connections.size, {}, 'open iSCSI connections');
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

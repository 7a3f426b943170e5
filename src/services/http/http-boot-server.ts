// node:http directly, no framework: five routes, a ~70-line Range/conditional module and
// streaming from disk are all this server needs, and it starts in the same tick as the others
// (no plugin graph to boot, no dependency to audit on the boot path).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import type { Service } from '../service.js';
import { parseMacText } from './mac-text.js';
import type { ScriptSource } from './script-source.js';
import { serveStaticFile } from './static-file.js';

export interface HttpBootServerOptions {
  /** Listen address (config http.address), e.g. "0.0.0.0". */
  readonly address: string;
  /** Listen port (config http.port); 0 picks a free port (tests), see `boundAddress()`. */
  readonly port: number;
  /** Directory served at /files/ (config http.root, default <dataDir>/http): kernels, initrds. */
  readonly root: string;
  /** Directory served at /bootfiles/ (the TFTP root with the iPXE binaries), for UEFI HTTP boot clients. Unset: route absent. */
  readonly bootFilesRoot?: string;
  /** Answers GET /boot/<mac>.ipxe. */
  readonly scripts: ScriptSource;
  /** Rendered at GET /metrics; also where this server counts requests and refusals. */
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Idle keep-alive connections are closed after this long. */
  readonly keepAliveTimeoutMs?: number;
  /** On stop, in-flight responses get this long to finish before their sockets are destroyed. */
  readonly stopGraceMs?: number;
}

export const HTTP_BOOT_DEFAULTS = {
  address: '0.0.0.0',
  port: 8080,
  // iPXE fetches the script, then kernel/initrd a moment later on the same connection.
  keepAliveTimeoutMs: 15_000,
  stopGraceMs: 2_000,
  headersTimeoutMs: 20_000,
} as const;

const SCRIPT_ROUTE = /^\/boot\/([^/]+)\.ipxe$/;
const FILES_PREFIX = '/files/';
const BOOT_FILES_PREFIX = '/bootfiles/';
const TEXT = 'text/plain; charset=utf-8';

/**
 * The HTTP boot server. Routes (GET and HEAD):
 * - `/boot/<mac>.ipxe`: the machine's iPXE script from `scripts` (MAC in any notation of
 *   mac-text.ts; 400 HTTP_BAD_MAC otherwise; 404 when the control layer has none for it);
 * - `/files/<path>`, `/bootfiles/<path>`: static files with Range, ETag and Last-Modified;
 * - `/metrics` (Prometheus text), `/healthz` ("ok").
 * Every refusal is counted in diskless_http_dropped_total{reason}; no request can crash it.
 */
export class HttpBootServer implements Service {
  readonly name = 'http';
  private server: Server | undefined;
  private readonly log: Logger;
  private readonly inFlight = new Set<ServerResponse>();

  constructor(private readonly options: HttpBootServerOptions) {
    this.log = options.log.child({ service: 'http' });
  }

  /** Resolves once listening; rejects HTTP_LISTEN_FAILED (address in use, not local, no permission). */
  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer({ keepAlive: true, requestTimeout: 0, headersTimeout: HTTP_BOOT_DEFAULTS.headersTimeoutMs }, (req, res) => this.onRequest(req, res));
    server.keepAliveTimeout = this.options.keepAliveTimeoutMs ?? HTTP_BOOT_DEFAULTS.keepAliveTimeoutMs;
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // A peer resetting the connection is not a malformed request: just drop the socket.
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      this.drop('bad_request');
      this.log.debug({ err: err.message, code: err.code }, 'malformed HTTP request');
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new DisklessError('HTTP_LISTEN_FAILED', `cannot listen on ${this.options.address}:${this.options.port}: ${err.code ?? err.message}`, { address: this.options.address, port: this.options.port, errno: err.code }, { cause: err }));
      };
      server.once('error', onError);
      server.listen(this.options.port, this.options.address, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'HTTP server error'));
    this.server = server;
    this.log.info({ address: this.boundAddress() }, 'HTTP boot server listening');
  }

  /** Stops accepting, lets in-flight responses finish for up to stopGraceMs, then closes every socket. Idempotent. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const grace = this.options.stopGraceMs ?? HTTP_BOOT_DEFAULTS.stopGraceMs;
    const deadline = Date.now() + grace;
    while (this.inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    server.closeAllConnections();
    await closed;
  }

  /** The bound address and port once started (the real port when options.port is 0). */
  boundAddress(): AddressInfo | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight.add(res);
    res.on('close', () => this.inFlight.delete(res));
    if (req.httpVersion === '1.1' && !/\bclose\b/i.test(req.headers.connection ?? '')) res.setHeader('Connection', 'keep-alive');
    this.route(req, res).catch((err: unknown) => {
      this.log.error({ err, url: req.url }, 'HTTP request failed');
      this.count('error', 500);
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = routeName(path, this.options.bootFilesRoot !== undefined);
    if (route === undefined) {
      this.drop('not_found');
      this.count('other', 404);
      return send(res, 404, 'no such route\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.drop('method');
      this.count(route, 405);
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, `method ${req.method} not allowed; allowed: GET, HEAD\n`);
    }
    switch (route) {
      case 'script':
        return this.script(req, res, path);
      case 'files':
      case 'bootfiles': {
        const root = route === 'files' ? this.options.root : this.options.bootFilesRoot!;
        const prefix = route === 'files' ? FILES_PREFIX : BOOT_FILES_PREFIX;
        const outcome = await serveStaticFile(req, res, root, path.slice(prefix.length));
        if (outcome.refusal) {
          this.drop(outcome.refusal);
          if (outcome.refusal === 'traversal') this.log.warn({ url: req.url, ip: clientIp(req) }, 'refused a path outside the served directory');
        }
        this.count(route, outcome.status);
        this.options.metrics.inc('diskless_http_sent_bytes_total', { route }, outcome.bytes, 'HTTP body bytes sent');
        return;
      }
      case 'metrics':
        this.count(route, 200);
        return send(res, 200, this.options.metrics.render(), 'text/plain; version=0.0.4; charset=utf-8', req.method === 'HEAD');
      case 'healthz':
        this.count(route, 200);
        return send(res, 200, 'ok\n', TEXT, req.method === 'HEAD');
    }
  }

  private async script(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const raw = SCRIPT_ROUTE.exec(path)?.[1];
    let text: string | undefined;
    try {
      text = raw === undefined ? undefined : decodeURIComponent(raw);
    } catch {
      text = undefined;
    }
    const mac = text === undefined ? null : parseMacText(text);
    if (mac === null) {
      this.drop('bad_mac');
      this.count('script', 400);
      const err = new DisklessError('HTTP_BAD_MAC', `bad MAC address ${JSON.stringify(text ?? raw ?? path)} in ${path}: expected /boot/<mac>.ipxe with 6 hex bytes such as 52:54:00:12:34:56, 52-54-00-12-34-56, 525400123456 or 5254.0012.3456`, { path });
      return send(res, 400, `error ${err.code}: ${err.message}\n`);
    }
    const ip = clientIp(req);
    let body: string;
    try {
      body = await this.options.scripts.scriptFor(mac, ip);
    } catch (err) {
      if (isDisklessError(err, 'CONTROL_UNKNOWN_NODE')) {
        this.drop('unknown_node');
        this.count('script', 404);
        return send(res, 404, `error ${err.code}: ${err.message}\n`);
      }
      throw err;
    }
    this.log.debug({ mac, ip }, 'served iPXE script');
    this.count('script', 200);
    res.setHeader('Cache-Control', 'no-store');
    return send(res, 200, body, TEXT, req.method === 'HEAD');
  }

  private count(route: string, status: number): void {
    this.options.metrics.inc('diskless_http_requests_total', { route, status: String(status) }, 1, 'HTTP requests by route and status');
  }

  private drop(reason: string): void {
    this.options.metrics.inc('diskless_http_dropped_total', { reason }, 1, 'HTTP requests refused, by reason');
  }
}

type Route = 'script' | 'files' | 'bootfiles' | 'metrics' | 'healthz';

function routeName(path: string, bootFiles: boolean): Route | undefined {
  if (path.startsWith('/boot/')) return 'script';
  if (path.startsWith(FILES_PREFIX)) return 'files';
  if (bootFiles && path.startsWith(BOOT_FILES_PREFIX)) return 'bootfiles';
  if (path === '/metrics') return 'metrics';
  if (path === '/healthz') return 'healthz';
  return undefined;
}

function send(res: ServerResponse, status: number, body: string, type = TEXT, headOnly = false): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(headOnly ? undefined : body);
}

/** The peer's address, IPv4-mapped IPv6 (::ffff:10.77.0.5) shown as plain IPv4. */
function clientIp(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

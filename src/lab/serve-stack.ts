import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import { DisklessError } from '../errors/index.js';
import type { BootStack } from './boot-stack.js';
import { sleep, type Lab } from './lab.js';
import { DaemonProcess } from './peers/daemon-process.js';

/** The compiled CLI entry point, next to this module in dist/. */
export const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** One socket a started server is expected to listen on. */
export interface ListenPort {
  readonly service: string;
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
}

/**
 * The sockets `diskless serve` opens for `config`, as far as `ss` can see them (DHCP and RA use
 * raw sockets and do not show): TFTP (udp), HTTP and iSCSI (tcp), each when enabled.
 */
export function expectedPorts(config: Config): ListenPort[] {
  const ports: ListenPort[] = [];
  if (config.tftp.enabled) ports.push({ service: 'tftp', protocol: 'udp', port: config.tftp.port });
  if (config.http.enabled) ports.push({ service: 'http', protocol: 'tcp', port: config.http.port });
  if (config.iscsi.enabled) ports.push({ service: 'iscsi', protocol: 'tcp', port: config.iscsi.port });
  return ports;
}

/** The subset of `ports` with no listening socket in the lab namespace right now. */
export async function missingPorts(lab: Lab, ports: readonly ListenPort[]): Promise<ListenPort[]> {
  const out = await lab.exec('ss', ['-Hlntu']);
  const listening = new Set(
    out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 5)
      .map((f) => `${f[0]}:${f[4]!.slice(f[4]!.lastIndexOf(':') + 1)}`),
  );
  return ports.filter((p) => !listening.has(`${p.protocol}:${p.port}`));
}

/**
 * Waits until every port listens, or `timeoutMs` passes, or `alive()` turns false; returns the
 * ports still missing (empty when all listen).
 */
export async function waitListening(lab: Lab, ports: readonly ListenPort[], timeoutMs: number, alive: () => boolean = () => true): Promise<ListenPort[]> {
  const deadline = Date.now() + timeoutMs;
  let missing = await missingPorts(lab, ports);
  while (missing.length > 0 && Date.now() < deadline && alive()) {
    await sleep(100);
    missing = await missingPorts(lab, ports);
  }
  return missing;
}

/** Options of the stack that is ours: `diskless serve` in the lab namespace. */
export interface ServeStackOptions {
  readonly lab: Lab;
  /** The YAML file `serve --config` reads. */
  readonly configPath: string;
  /** The same configuration, parsed: which ports to wait for, where leases live. */
  readonly config: Config;
  /** Default: this Node binary. */
  readonly nodeBinary?: string;
  /** Default: dist/src/cli/main.js. */
  readonly cliMain?: string;
  readonly readyTimeoutMs?: number;
}

/** File in `server.dataDir` where the DHCP server keeps its leases (src/services/dhcp/lease-store.ts). */
export const LEASE_FILE_NAME = 'dhcp-leases.json';

/**
 * Our own stack for the benchmark and e2e tests: `node dist/src/cli/main.js serve --config FILE`
 * inside the lab namespace, tied to this process. Ready when every TCP/UDP port its config
 * enables is listening.
 */
export class ServeStack implements BootStack {
  readonly name = 'diskless';
  readonly options: ServeStackOptions;
  #daemon: DaemonProcess | undefined;

  constructor(options: ServeStackOptions) {
    this.options = options;
  }

  async start(): Promise<void> {
    const o = this.options;
    const child = o.lab.spawn(o.nodeBinary ?? process.execPath, [o.cliMain ?? CLI_MAIN, 'serve', '--config', o.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = new DaemonProcess('diskless serve', child);
    this.#daemon = daemon;
    const ports = expectedPorts(o.config);
    const missing = await waitListening(o.lab, ports, o.readyTimeoutMs ?? 15_000, () => !daemon.exited);
    if (daemon.exited) {
      this.#daemon = undefined;
      throw new DisklessError('LAB_PROCESS_EXITED', `diskless serve exited while starting: ${daemon.output.trim().split('\n').slice(-3).join(' | ')}`, { process: 'diskless serve', output: daemon.output });
    }
    if (missing.length > 0) {
      await this.stop();
      throw new DisklessError('LAB_TIMEOUT', `diskless serve is not listening on ${missing.map((p) => `${p.service} ${p.protocol}/${p.port}`).join(', ')}`, { missing, output: daemon.output });
    }
  }

  /** The server's log so far. */
  get output(): string {
    return this.#daemon?.output ?? '';
  }

  async stop(): Promise<void> {
    await this.#daemon?.stop('SIGTERM', 5000);
    this.#daemon = undefined;
  }

  async forgetLeases(): Promise<void> {
    await this.stop();
    await rm(join(this.options.config.server.dataDir, LEASE_FILE_NAME), { force: true });
    await this.start();
  }
}

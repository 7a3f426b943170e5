import { join } from 'node:path';
import type { Config, NodeConfig } from '../config/schema.js';
import { DisklessError } from '../errors/index.js';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import type { BootClient, BootDecision, BootPolicy } from '../services/dhcp/boot-policy.js';
import type { ScriptSource } from '../services/http/script-source.js';
import type { Service } from '../services/service.js';
import { firmwareBootFile } from './boot-file.js';
import { DiscoveryStore } from './discovery-store.js';
import { canonicalMac, Inventory } from './inventory.js';
import { renderIpxeScript, type BootScript } from './ipxe-script.js';

export interface BootControlOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Default: `Inventory.fromConfig(config)`. */
  readonly inventory?: Inventory;
  /** Default: a DiscoveryStore on `<server.dataDir>/discovered.json`. */
  readonly discovery?: DiscoveryStore;
  /** Clock for discovery timestamps (tests pass a fixed one). */
  readonly now?: () => Date;
  /** How long a waiting (discovered) machine sleeps before asking again. Default: config defaults.discoveryRetrySeconds. */
  readonly discoveryRetrySeconds?: number;
  /** How long the unknown-machine menu waits before booting the local disk. */
  readonly menuTimeoutSeconds?: number;
}

export const BOOT_CONTROL_DEFAULTS = {
  menuTimeoutSeconds: 30,
  /** MACs whose last option 93 value is remembered for discovery records. */
  rememberedArches: 1024,
} as const;

/** The LUN our iSCSI target serves each volume on. */
export const VOLUME_LUN = 0;

/**
 * The control layer's answer to "who is this MAC, what should it boot?", for both servers on
 * the boot path: DHCP asks `resolve` (BootPolicy) which file or URL to put in the offer, HTTP
 * asks `scriptFor` (ScriptSource) for the iPXE script behind that URL. Also a Service: `start`
 * loads the discovery list and checks every node's script renders (a bad value fails the start
 * with the node named, not a boot hours later); `stop` waits for pending discovery writes.
 */
export class BootControl implements BootPolicy, ScriptSource, Service {
  readonly name = 'control';
  readonly discovery: DiscoveryStore;
  private current: Inventory;
  private readonly inventoryListeners: Array<(inventory: Inventory) => void> = [];
  private readonly arches = new Map<string, number>();
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly now: () => Date;
  private readonly retrySeconds: number;
  private readonly menuSeconds: number;

  constructor(private readonly options: BootControlOptions) {
    const { config } = options;
    this.current = options.inventory ?? Inventory.fromConfig(config);
    this.log = options.log.child({ service: 'control' });
    this.metrics = options.metrics;
    this.discovery = options.discovery ?? new DiscoveryStore({ file: join(config.server.dataDir, 'discovered.json'), log: this.log, metrics: options.metrics });
    this.now = options.now ?? (() => new Date());
    this.retrySeconds = options.discoveryRetrySeconds ?? config.defaults.discoveryRetrySeconds;
    this.menuSeconds = options.menuTimeoutSeconds ?? BOOT_CONTROL_DEFAULTS.menuTimeoutSeconds;
  }

  get inventory(): Inventory {
    return this.current;
  }

  /** Swaps in a new inventory (configuration reload, adoption); the next request sees it. Validates first. */
  setInventory(inventory: Inventory): void {
    this.validate(inventory);
    this.current = inventory;
    for (const listener of this.inventoryListeners) listener(inventory);
  }

  /** Calls `listener` after each `setInventory` (what follows the node list: AoE mask lists). */
  onInventory(listener: (inventory: Inventory) => void): void {
    this.inventoryListeners.push(listener);
  }

  async start(): Promise<void> {
    this.validate(this.current);
    await this.discovery.load();
  }

  async stop(): Promise<void> {
    await this.discovery.flush();
  }

  /**
   * Renders every node's script once; throws the first failure as CONFIG_INVALID naming the
   * node (`nodes[2]`), the value and what is allowed. Cheap (string work), run at start-up.
   */
  validate(inventory: Inventory = this.current): void {
    inventory.nodes.forEach((node, i) => {
      try {
        renderIpxeScript(this.nodeScript(node));
      } catch (err) {
        if (!(err instanceof DisklessError)) throw err;
        const field = String(err.data.field ?? '');
        throw new DisklessError('CONFIG_INVALID', `node ${node.name} (nodes[${i}]): ${err.message}`, { key: `nodes[${i}]`, field, value: err.data.value, allowed: err.data.allowed }, { cause: err });
      }
    });
  }

  /** BootPolicy (RFC 4578 §2.1 arch → file; iPXE → script URL). Null: unknown under `ignore`, or an arch we have nothing for. */
  async resolve(client: BootClient): Promise<BootDecision | null> {
    const node = this.current.node(client.mac);
    if (client.arch !== undefined) this.rememberArch(client.mac, client.arch);
    if (!node && this.current.unknownNode === 'ignore') {
      this.metrics.inc('diskless_control_decisions_total', { result: 'ignored' }, 1, 'boot decisions for DHCP, by result');
      return null;
    }
    const bootFile = client.isIpxe ? this.scriptUrl(client.mac) : firmwareBootFile(client.arch, this.options.config.bootFiles, this.httpBase());
    if (bootFile === null) {
      this.metrics.inc('diskless_control_decisions_total', { result: 'unsupported_arch' }, 1, 'boot decisions for DHCP, by result');
      this.log.warn({ mac: client.mac, arch: client.arch }, 'no boot file for this client architecture; not answering');
      return null;
    }
    this.metrics.inc('diskless_control_decisions_total', { result: client.isIpxe ? 'ipxe' : 'firmware' }, 1, 'boot decisions for DHCP, by result');
    const hostname = node?.hostname ?? node?.name;
    return {
      bootFile,
      nextServer: this.options.config.server.address,
      ...(node?.ip === undefined ? {} : { address: node.ip }),
      ...(hostname === undefined ? {} : { hostname }),
    };
  }

  /** ScriptSource: the iPXE script for `mac`. Rejects CONTROL_UNKNOWN_NODE under `unknownNode: ignore`. */
  async scriptFor(mac: string, clientIp: string): Promise<string> {
    const node = this.current.node(mac);
    if (node) {
      if (this.discovery.get(mac)) void this.discovery.forget(mac).catch((err: unknown) => this.discoveryFailed(mac, err));
      this.metrics.inc('diskless_control_scripts_total', { kind: node.boot }, 1, 'iPXE scripts served, by kind');
      return renderIpxeScript(this.nodeScript(node));
    }
    const policy = this.current.unknownNode;
    if (policy === 'ignore') {
      this.metrics.inc('diskless_control_scripts_total', { kind: 'refused' }, 1, 'iPXE scripts served, by kind');
      throw new DisklessError('CONTROL_UNKNOWN_NODE', `no boot script for ${mac}: not in the inventory and defaults.unknownNode is ignore`, { mac });
    }
    this.metrics.inc('diskless_control_scripts_total', { kind: policy }, 1, 'iPXE scripts served, by kind');
    return renderIpxeScript(await this.unknownScript(policy, mac, clientIp));
  }

  /** The stable URL of a machine's script: `http://<host>:<port>/boot/<mac with dashes>.ipxe`. */
  scriptUrl(mac: string): string {
    return `${this.httpBase()}/boot/${mac.toLowerCase().replace(/:/g, '-')}.ipxe`;
  }

  /** `<iscsi.iqnPrefix>.initiator:<node name, lower case>`: the initiator name a node logs in with. */
  initiatorIqn(node: NodeConfig): string {
    return `${this.options.config.iscsi.iqnPrefix}.initiator:${node.name.toLowerCase()}`;
  }

  /** `<iscsi.iqnPrefix>:<volume>`: the target IQN the iSCSI server gives a volume. */
  targetIqn(volume: string): string {
    return `${this.options.config.iscsi.iqnPrefix}:${volume}`;
  }

  /** The shelf.slot a volume is exported at over AoE (config check-semantics guarantees one for a node with san: aoe). */
  private aoeAddress(volume: string): { shelf: number; slot: number } {
    const e = this.options.config.aoe.exports.find((x) => x.volume === volume);
    if (!e) throw new DisklessError('CONFIG_INVALID', `volume ${volume} is not in aoe.exports`, { key: 'aoe.exports', value: volume, allowed: 'an exported volume' });
    return { shelf: e.shelf, slot: e.slot };
  }

  private nodeScript(node: NodeConfig): BootScript {
    switch (node.boot) {
      case 'exit':
        return { kind: 'exit', mac: node.mac, node: node.name };
      case 'script':
        return { kind: 'script', node: node.name, body: node.script ?? '' };
      case 'sanboot': {
        if (node.volume === undefined) throw new DisklessError('CONFIG_INVALID', `node ${node.name}: boot is sanboot but no volume is given`, { key: 'volume', value: undefined, allowed: 'a volume name' });
        const { iscsi, server } = this.options.config;
        return {
          kind: 'sanboot',
          node: node.name,
          volume: node.volume,
          initiatorIqn: this.initiatorIqn(node),
          target: { server: specificAddress(iscsi.address) ?? server.address, port: iscsi.port, lun: VOLUME_LUN, iqn: this.targetIqn(node.volume) },
          ...(node.chap ? { chap: { username: node.chap.username, secret: node.chap.secret } } : {}),
          ...(node.san === 'aoe' ? { aoe: this.aoeAddress(node.volume) } : {}),
        };
      }
    }
  }

  private async unknownScript(policy: 'exit' | 'menu' | 'discovery', mac: string, clientIp: string): Promise<BootScript> {
    const canonical = canonicalMac(mac);
    switch (policy) {
      case 'exit':
        return { kind: 'exit', mac: canonical };
      case 'menu':
        return { kind: 'menu', mac: canonical, retryUrl: this.scriptUrl(canonical), timeoutSeconds: this.menuSeconds };
      case 'discovery': {
        const arch = this.arches.get(canonical);
        try {
          const m = await this.discovery.record({ mac: canonical, at: this.now(), ip: clientIp, ...(arch === undefined ? {} : { arch }) });
          if (m.requests === 1) this.log.info({ mac: canonical, ip: clientIp, arch }, 'discovered a new machine; waiting for adoption');
        } catch (err) {
          // The machine still gets its waiting script; the sighting is retried on its next request.
          this.discoveryFailed(canonical, err);
        }
        return { kind: 'discovery', mac: canonical, retryUrl: this.scriptUrl(canonical), retrySeconds: this.retrySeconds };
      }
    }
  }

  private discoveryFailed(mac: string, err: unknown): void {
    this.metrics.inc('diskless_control_discovery_write_failures_total', {}, 1, 'failed writes of discovered.json');
    this.log.error({ mac, err }, 'cannot persist the discovered-machines list');
  }

  private rememberArch(mac: string, arch: number): void {
    this.arches.delete(mac);
    this.arches.set(mac, arch);
    if (this.arches.size > BOOT_CONTROL_DEFAULTS.rememberedArches) this.arches.delete(this.arches.keys().next().value as string);
  }

  private httpBase(): string {
    const { http, server } = this.options.config;
    return `http://${specificAddress(http.address) ?? server.address}:${http.port}`;
  }
}

/** A listen address that names one IPv4 address (not a wildcard), or undefined. */
function specificAddress(address: string): string | undefined {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(address) && address !== '0.0.0.0' ? address : undefined;
}

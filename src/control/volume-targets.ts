import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config, VolumeConfig } from '../config/schema.js';
import { parseSize } from '../config/parse-size.js';
import { DisklessError } from '../errors/index.js';
import type { Logger } from '../observe/logger.js';
import type { ChapCredentials, InitiatorInfo, TargetBinding, TargetListing, TargetResolver } from '../services/iscsi/target-resolver.js';
import type { Service } from '../services/service.js';
import { attachReservationFile } from '../services/iscsi/unit-state.js';
import type { BlockDevice } from '../store/block-device.js';
import { DEMO_DISK_SIZE, writeDemoDisk } from '../store/demo-disk.js';
import type { StorageDriver } from '../store/storage-driver.js';
import type { Inventory } from './inventory.js';

/** The `source` value that makes a volume the built-in DISKLESS-OK marker disk. */
export const DEMO_SOURCE = 'demo';

export interface VolumeTargetsOptions {
  readonly volumes: readonly VolumeConfig[];
  /** Target IQN = `<iqnPrefix>:<volume>` (config `iscsi.iqnPrefix`). */
  readonly iqnPrefix: string;
  readonly driver: StorageDriver;
  /** The live inventory (BootControl swaps it on reload), read at each login for CHAP secrets. */
  readonly inventory: () => Inventory;
  readonly log: Logger;
  /**
   * Where each volume's SCSI persistent reservations are kept (`<dir>/<volume>.json`, written
   * atomically on every change), so PERSISTENT RESERVE OUT survives a restart. Unset: kept in
   * memory only.
   */
  readonly reservationsDir?: string;
}

/**
 * The iSCSI target's view of the configured volumes (TargetResolver), and the start-up step
 * that makes them exist. `start` creates every declared volume that the driver lacks — empty
 * with `size`, imported from a file `source`, or the demo marker disk for `source: demo` —
 * then opens each once; every session of a target shares that one BlockDevice (positional
 * I/O). A volume's CHAP secret is that of the node that boots from it, read at each login so
 * a reloaded inventory applies to the next login. Several nodes on one volume with different
 * secrets cannot be expressed by one target secret: the first node with CHAP wins, and
 * `start` logs a warning.
 */
export class VolumeTargets implements TargetResolver, Service {
  readonly name = 'volumes';
  private readonly devices = new Map<string, { device: BlockDevice; readOnly: boolean }>();

  constructor(private readonly options: VolumeTargetsOptions) {}

  /** Builds the options from a validated config. */
  static fromConfig(config: Config, driver: StorageDriver, inventory: () => Inventory, log: Logger): VolumeTargets {
    return new VolumeTargets({ volumes: config.volumes, iqnPrefix: config.iscsi.iqnPrefix, driver, inventory, log, reservationsDir: join(config.server.dataDir, 'reservations') });
  }

  async start(): Promise<void> {
    try {
      for (const volume of this.options.volumes) {
        if (!(await this.options.driver.exists(volume.name))) await this.create(volume);
        const device = await this.options.driver.open(volume.name, { readOnly: volume.readOnly });
        this.devices.set(volume.name, { device, readOnly: volume.readOnly });
        if (this.options.reservationsDir !== undefined) {
          await mkdir(this.options.reservationsDir, { recursive: true });
          await attachReservationFile(device, join(this.options.reservationsDir, `${volume.name}.json`));
        }
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const open = [...this.devices.values()];
    this.devices.clear();
    for (const { device } of open) await device.close().catch((err: unknown) => this.options.log.error({ err }, 'closing volume failed'));
  }

  /** Every configured volume is listed to every initiator (per-node ACLs come with the fleet control plane). */
  async listTargets(_initiator: InitiatorInfo): Promise<readonly TargetListing[]> {
    return [...this.devices.keys()].map((name) => ({ name: this.iqn(name) }));
  }

  async resolve(targetName: string, _initiator: InitiatorInfo): Promise<TargetBinding | null> {
    const prefix = `${this.options.iqnPrefix}:`;
    if (!targetName.toLowerCase().startsWith(prefix.toLowerCase())) return null;
    const volume = targetName.slice(prefix.length);
    const open = this.devices.get(volume);
    if (!open) return null;
    const chap = this.chapFor(volume);
    return { device: open.device, readOnly: open.readOnly, ...(chap ? { chap } : {}) };
  }

  /** `<iqnPrefix>:<volume>`. */
  iqn(volume: string): string {
    return `${this.options.iqnPrefix}:${volume}`;
  }

  private chapFor(volume: string): ChapCredentials | undefined {
    const users = this.options.inventory().nodes.filter((n) => n.volume === volume && n.chap);
    if (users.length > 1) this.options.log.warn({ volume, nodes: users.map((n) => n.name) }, 'several nodes with CHAP share a volume; the first one’s secret is the target’s');
    const chap = users[0]?.chap;
    return chap ? { username: chap.username, secret: chap.secret } : undefined;
  }

  private async create(volume: VolumeConfig): Promise<void> {
    const size = volume.size === undefined ? undefined : parseSize(volume.size);
    if (volume.source === DEMO_SOURCE) {
      const dir = await mkdtemp(join(tmpdir(), 'diskless-demo-'));
      try {
        const path = join(dir, 'demo.img');
        await writeDemoDisk(path, size ?? DEMO_DISK_SIZE);
        await this.options.driver.create(volume.name, { from: path });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } else if (volume.source !== undefined) {
      await this.options.driver.create(volume.name, { from: volume.source, ...(size === undefined ? {} : { size }) });
    } else if (size !== undefined) {
      await this.options.driver.create(volume.name, { size });
    } else {
      throw new DisklessError('CONFIG_INVALID', `volume ${volume.name}: needs a size or a source`, { key: 'volumes', value: volume.name, allowed: 'size or source' });
    }
    this.options.log.info({ volume: volume.name, source: volume.source ?? 'empty' }, 'volume created');
  }
}

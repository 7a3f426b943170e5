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
  /**
   * The storage: a driver the caller opened and closes, or a function that opens one, which
   * this VolumeTargets then owns (opened by `start`, closed by `stop` after the devices).
   */
  readonly driver: StorageDriver | (() => Promise<StorageDriver>);
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
 * with `size`, imported from a file `source`, the demo marker disk for `source: demo`, or a
 * writable clone of `clone: VOLUME@SNAPSHOT` (taking that snapshot of VOLUME first when it
 * does not exist yet: a golden image declared with `source:` is snapshotted as it was
 * imported) — in the order declared (a clone's origin is declared above it), then opens each once; every session of a target shares that one BlockDevice (positional
 * I/O). A volume's CHAP secret is that of the node that boots from it, read at each login so
 * a reloaded inventory applies to the next login. Several nodes on one volume with different
 * secrets cannot be expressed by one target secret: the first node with CHAP wins, and
 * `start` logs a warning.
 */
export class VolumeTargets implements TargetResolver, Service {
  readonly name = 'volumes';
  private readonly devices = new Map<string, { device: BlockDevice; readOnly: boolean }>();
  /** The driver in use between start and stop. */
  private active: StorageDriver | undefined;

  constructor(private readonly options: VolumeTargetsOptions) {}

  /** Builds the options from a validated config. */
  static fromConfig(config: Config, driver: StorageDriver | (() => Promise<StorageDriver>), inventory: () => Inventory, log: Logger): VolumeTargets {
    return new VolumeTargets({ volumes: config.volumes, iqnPrefix: config.iscsi.iqnPrefix, driver, inventory, log, reservationsDir: join(config.server.dataDir, 'reservations') });
  }

  async start(): Promise<void> {
    const given = this.options.driver;
    const driver = typeof given === 'function' ? await given() : given;
    this.active = driver;
    try {
      for (const volume of this.options.volumes) {
        if (!(await driver.exists(volume.name))) await this.create(driver, volume);
        const device = await driver.open(volume.name, { readOnly: volume.readOnly });
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
    const driver = this.active;
    this.active = undefined;
    if (driver && typeof this.options.driver === 'function') await driver.close().catch((err: unknown) => this.options.log.error({ err }, 'closing the storage driver failed'));
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

  /** The open device of a configured volume (between start and stop), for the other targets that serve it (AoE). */
  device(volume: string): { device: BlockDevice; readOnly: boolean } | undefined {
    return this.devices.get(volume);
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

  private async create(driver: StorageDriver, volume: VolumeConfig): Promise<void> {
    const size = volume.size === undefined ? undefined : parseSize(volume.size);
    if (volume.clone !== undefined) {
      const at = volume.clone.indexOf('@');
      const origin = volume.clone.slice(0, at);
      const snapshot = volume.clone.slice(at + 1);
      if (!(await driver.listSnapshots(origin)).some((s) => s.name === snapshot)) {
        await driver.snapshot(origin, snapshot);
        this.options.log.info({ volume: origin, snapshot }, 'snapshot taken for a clone');
      }
      await driver.clone(origin, snapshot, volume.name);
    } else if (volume.source === DEMO_SOURCE) {
      const dir = await mkdtemp(join(tmpdir(), 'diskless-demo-'));
      try {
        const path = join(dir, 'demo.img');
        await writeDemoDisk(path, size ?? DEMO_DISK_SIZE);
        await driver.create(volume.name, { from: path });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } else if (volume.source !== undefined) {
      await driver.create(volume.name, { from: volume.source, ...(size === undefined ? {} : { size }) });
    } else if (size !== undefined) {
      await driver.create(volume.name, { size });
    } else {
      throw new DisklessError('CONFIG_INVALID', `volume ${volume.name}: needs a size or a source`, { key: 'volumes', value: volume.name, allowed: 'size or source' });
    }
    this.options.log.info({ volume: volume.name, source: volume.clone ?? volume.source ?? 'empty' }, 'volume created');
  }
}

import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import type { BlockDevice } from '../block-device.js';
import type { CreateVolumeOptions, OpenVolumeOptions, ReceiveOptions, ScrubReport, SendOptions, SnapshotInfo, StorageDriver, StorageDriverCapabilities, VolumeInfo } from '../storage-driver.js';
import { assertName, assertVolumeName } from '../volume-name.js';
import { copySparse, resolveCreate } from '../create-options.js';
import { FileBlockDevice, type WarnLog } from '../file/file-block-device.js';
import { DEFAULT_ZFS_PROGRAMS, runZfs, ZFS_COMMAND_TIMEOUT_MS, type ZfsPrograms } from './zfs-command.js';
import { ZfsDatasets, zfsUnsupported } from './zfs-datasets.js';
import { detectZfsFeatures, type ZfsFeatures } from './zfs-features.js';
import { ZfsInventory } from './zfs-inventory.js';
import { ZfsSendReceive } from './zfs-send-receive.js';
import { writeZfsSidecar } from './zfs-sidecar.js';
import { destroyStaleClones, openSnapshotClone } from './zfs-snapshot-clones.js';
import { clonesOf, internalClonesOf, notFoundSnapshot, numberProp, recordedHoldTags, scrubCounters, snapshotRow, stringProp, volumeRow, type ZfsTree } from './zfs-tree.js';
import { ZfsVolumeDevice } from './zfs-volume-device.js';
import { decodeZpoolStatus } from './zpool-status.js';
import { probePunchHole } from './probe-punch-hole.js';

export { ZFS_VOLUME_FORMAT_VERSION } from './zfs-sidecar.js';

/** Options of `ZfsStorageDriver.open`. */
export interface ZfsStorageDriverOptions {
  /** The parent dataset ("tank/diskless"); created (with parents) when missing. Volumes are its children. */
  readonly dataset: string;
  /** Where the zfs and zpool programs are (default: found on PATH). */
  readonly programs?: ZfsPrograms;
  /** Where an opened volume says why unmap is off. */
  readonly log?: WarnLog;
  /** How often scrub polls `zpool status` while a scrub runs (default 100 ms). */
  readonly scrubPollMs?: number;
  /**
   * How long one zfs/zpool command may run before it is killed and the call fails with
   * STORE_ZFS naming the command and this timeout (data.timeoutMs); for send and receive, how
   * long zfs may go without giving or taking a byte, or without exiting once its input ended.
   * Default ZFS_COMMAND_TIMEOUT_MS (120 s); allowed 1..MAX_ZFS_COMMAND_TIMEOUT_MS (1 hour).
   */
  readonly commandTimeoutMs?: number;
}

/** Largest `commandTimeoutMs`. */
export const MAX_ZFS_COMMAND_TIMEOUT_MS = 3_600_000;

/**
 * Storage driver over OpenZFS or zfs-fuse, driving the `zfs`/`zpool` commands (execFile or
 * spawn, never a shell). Volume `name` is the child dataset `<dataset>/<name>`: a zvol where
 * the platform has them, otherwise (zfs-fuse) a file system holding `volume.img` (the blocks)
 * and `volume.json` (size and block size, so they travel with snapshots and send streams),
 * served by FileBlockDevice. Snapshots, clones, rollback, promote, holds and send/receive
 * are ZFS's own; figures come from `zfs get -Hp`. docs/zfs.md has the mapping, the feature
 * detection and the zfs-fuse quirks this works around.
 *
 * Every failed command becomes a DisklessError: the precise STORE_* code where the failure
 * means one (not found, exists, has dependents, busy, no space, bad stream), else STORE_ZFS
 * with the command, exit status and stderr in `data`. Dependency rules are checked before
 * the command runs, so a refused call changes nothing.
 */
export class ZfsStorageDriver implements StorageDriver {
  readonly name = 'zfs';
  readonly capabilities: StorageDriverCapabilities;
  /** The parent dataset. */
  readonly root: string;
  /** The pool the parent dataset lives in. */
  readonly pool: string;
  readonly features: ZfsFeatures;
  private readonly log: WarnLog | undefined;
  private readonly scrubPollMs: number;
  private readonly datasets: ZfsDatasets;
  private readonly inventory: ZfsInventory;
  private readonly streams: ZfsSendReceive;

  private constructor(options: ZfsStorageDriverOptions, features: ZfsFeatures, unmap: boolean) {
    this.datasets = new ZfsDatasets(options.dataset, features, options.programs ?? DEFAULT_ZFS_PROGRAMS, commandTimeout(options));
    this.inventory = new ZfsInventory(this.datasets);
    this.streams = new ZfsSendReceive(this.datasets, this.inventory);
    this.root = this.datasets.root;
    this.pool = this.datasets.pool;
    this.log = options.log;
    this.scrubPollMs = options.scrubPollMs ?? 100;
    this.features = features;
    this.capabilities = {
      snapshots: true,
      clones: true,
      rollback: true,
      promote: true,
      holds: features.poolVersion >= 18,
      sendReceive: true,
      resumableReceive: features.resumableReceive,
      scrub: true,
      unmap,
    };
  }

  /**
   * Opens the driver on `options.dataset`, creating it (and its parents) when missing with
   * atime=off (reads must not modify a volume, or incremental receives into it are refused),
   * probes the pool's features, and destroys snapshot-open clones left by dead processes.
   * Throws STORE_NOT_FOUND when the pool does not exist, STORE_INVALID_NAME for a bad name,
   * CONFIG_INVALID for a bad commandTimeoutMs, STORE_ZFS when zfs fails or does not answer.
   */
  static async open(options: ZfsStorageDriverOptions): Promise<ZfsStorageDriver> {
    const root = options.dataset;
    if (typeof root !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:-]*(\/[A-Za-z0-9_.:-]+)*$/.test(root) || root.length > 200) {
      throw new DisklessError('STORE_INVALID_NAME', `cannot use zfs dataset ${JSON.stringify(root)}: allowed is pool[/dataset...] of letters, digits, _ . : -`, { field: 'dataset', value: root });
    }
    const programs = options.programs ?? DEFAULT_ZFS_PROGRAMS;
    const timeoutMs = commandTimeout(options);
    const zfs = (args: string[], what: string): Promise<string> => runZfs(programs.zfs, args, what, { dataset: root }, timeoutMs);
    try {
      await zfs(['list', '-H', '-o', 'name', root], `open dataset ${root}`);
    } catch (err) {
      if (!isDisklessError(err, 'STORE_NOT_FOUND')) throw err;
      await zfs(['create', '-p', '-o', 'atime=off', root], `create dataset ${root}`);
    }
    const atime = (await zfs(['get', '-H', '-o', 'value', 'atime', root], `read atime of ${root}`)).trim();
    if (atime !== 'off') await zfs(['set', 'atime=off', root], `set atime=off on ${root}`);
    const features = await detectZfsFeatures(programs, root.split('/')[0]!, root, timeoutMs);
    let unmap = false;
    if (!features.zvols) {
      const mountpoint = (await zfs(['get', '-H', '-o', 'value', 'mountpoint', root], `read the mountpoint of ${root}`)).trim();
      if (!mountpoint.startsWith('/')) {
        throw new DisklessError('STORE_UNSUPPORTED', `cannot use dataset ${root} for file volumes: its mountpoint is ${mountpoint}, and this platform has no zvols (set a mountpoint)`, { dataset: root, field: 'mountpoint', value: mountpoint });
      }
      unmap = await probePunchHole(mountpoint);
    }
    const driver = new ZfsStorageDriver(options, features, unmap);
    await destroyStaleClones(driver.datasets, driver.log);
    return driver;
  }

  // ---- volumes ----

  async create(name: string, options: CreateVolumeOptions): Promise<VolumeInfo> {
    const { blockSize, size } = await resolveCreate(name, options);
    if (await this.exists(name)) throw new DisklessError('STORE_EXISTS', `cannot create volume ${name}: it already exists`, { volume: name });
    const ds = this.datasets.ds(name);
    const props = ['-o', `diskless:origin=${options.from !== undefined ? 'import' : 'empty'}`, '-o', `diskless:blocksize=${blockSize}`];
    if (options.from !== undefined) props.push('-o', `diskless:import-path=${options.from}`);
    if (this.features.zvols) {
      await this.datasets.zfs(['create', '-s', '-V', String(size), '-o', `volblocksize=${Math.max(blockSize, 4096)}`, ...props, ds], `create volume ${name}`, { volume: name });
    } else {
      await this.datasets.zfs(['create', '-o', 'atime=off', ...props, ds], `create volume ${name}`, { volume: name });
    }
    try {
      const path = await this.datasets.imagePath(name);
      await this.datasets.fsCall('create', name, async () => {
        const fh = await open(path, this.features.zvols ? fsc.O_RDWR : fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, 0o600);
        try {
          if (options.from !== undefined) await copySparse(options.from, fh);
          if (!this.features.zvols) await fh.truncate(size);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        if (!this.features.zvols) await writeZfsSidecar(dirname(path), size, blockSize);
      });
    } catch (err) {
      await this.datasets.zfs(['destroy', ds], `destroy half-created volume ${name}`).catch(() => undefined);
      throw err;
    }
    return this.info(name);
  }

  async list(): Promise<VolumeInfo[]> {
    const tree = await this.datasets.tree(true);
    const out: VolumeInfo[] = [];
    for (const d of tree.volumes.values()) out.push(await this.inventory.volumeInfo(d));
    return out;
  }

  exists(name: string): Promise<boolean> {
    try {
      assertVolumeName(name);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.datasets.zfs(['list', '-H', '-o', 'name', this.datasets.ds(name)], `look up volume ${name}`, { volume: name }).then(
      () => true,
      (err: unknown) => {
        if (isDisklessError(err, 'STORE_NOT_FOUND')) return false;
        throw err;
      },
    );
  }

  async info(name: string): Promise<VolumeInfo> {
    assertVolumeName(name);
    const tree = await this.datasets.tree(true);
    return this.inventory.volumeInfo(volumeRow(tree, name));
  }

  async open(name: string, options: OpenVolumeOptions & { readonly snapshot?: string } = {}): Promise<BlockDevice> {
    assertVolumeName(name);
    if (options.snapshot !== undefined) return openSnapshotClone(this.datasets, this.inventory, name, options.snapshot, this.log);
    const tree = await this.datasets.tree(false);
    const d = volumeRow(tree, name);
    const readOnly = options.readOnly ?? false;
    const { size, blockSize } = await this.inventory.geometry(d);
    const path = await this.datasets.imagePath(name, d);
    const fh = await this.datasets.fsCall('open', name, () => open(path, readOnly ? 'r' : 'r+'));
    return new ZfsVolumeDevice(new FileBlockDevice(fh, size, blockSize, readOnly, name, this.log ? { log: this.log } : {}));
  }

  async destroy(name: string, options: { readonly recursive?: boolean } = {}): Promise<void> {
    assertVolumeName(name);
    const tree = await this.datasets.tree(false);
    const d = volumeRow(tree, name);
    if (d.snapshots.length > 0 && !options.recursive) {
      throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot destroy volume ${name}: it has snapshots ${d.snapshots.map((s) => s.name).join(', ')} (destroy them, or destroy recursively)`, { volume: name, snapshots: d.snapshots.map((s) => s.name) });
    }
    for (const s of d.snapshots) this.assertSnapshotDestroyable(tree, name, s.name, s.full, numberProp(s.props, 'userrefs'));
    await this.datasets.destroy(this.datasets.ds(name), options.recursive ? ['-r'] : [], `destroy volume ${name}`, { volume: name });
  }

  // ---- snapshots ----

  async listSnapshots(volume?: string): Promise<SnapshotInfo[]> {
    if (volume !== undefined) assertVolumeName(volume);
    const tree = await this.datasets.tree(false);
    const vols = volume !== undefined ? [volumeRow(tree, volume)] : [...tree.volumes.values()];
    const out: SnapshotInfo[] = [];
    for (const d of vols) for (let i = 0; i < d.snapshots.length; i++) out.push(await this.inventory.snapshotInfo(tree, d, i));
    return out;
  }

  async snapshot(volume: string, snapshot: string): Promise<SnapshotInfo> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    const tree = await this.datasets.tree(false);
    const d = volumeRow(tree, volume);
    if (d.snapshots.some((s) => s.name === snapshot)) throw new DisklessError('STORE_EXISTS', `cannot snapshot volume ${volume}: snapshot ${snapshot} exists`, { volume, snapshot });
    await this.datasets.zfs(['snapshot', `${d.dataset}@${snapshot}`], `snapshot volume ${volume} as ${snapshot}`, { volume, snapshot });
    return this.inventory.findSnapshot(volume, snapshot);
  }

  async destroySnapshot(volume: string, snapshot: string): Promise<void> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    const tree = await this.datasets.tree(false);
    const s = snapshotRow(tree, volume, snapshot);
    this.assertSnapshotDestroyable(tree, volume, snapshot, s.full, numberProp(s.props, 'userrefs'));
    await this.datasets.destroy(s.full, [], `destroy snapshot ${volume}@${snapshot}`, { volume, snapshot });
  }

  async clone(volume: string, snapshot: string, name: string): Promise<VolumeInfo> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    assertVolumeName(name);
    const tree = await this.datasets.tree(false);
    const s = snapshotRow(tree, volume, snapshot);
    if (tree.volumes.has(name)) throw new DisklessError('STORE_EXISTS', `cannot clone ${volume}@${snapshot} as ${name}: volume ${name} exists`, { volume: name });
    await this.datasets.zfs(['clone', ...(this.features.zvols ? [] : ['-o', 'atime=off']), s.full, this.datasets.ds(name)], `clone ${volume}@${snapshot} as ${name}`, { volume, snapshot, clone: name });
    return this.info(name);
  }

  async rollback(volume: string, snapshot: string, options: { readonly destroyLater?: boolean } = {}): Promise<void> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    const tree = await this.datasets.tree(false);
    const d = volumeRow(tree, volume);
    const index = d.snapshots.findIndex((s) => s.name === snapshot);
    if (index < 0) throw notFoundSnapshot(volume, snapshot);
    const later = d.snapshots.slice(index + 1);
    if (later.length > 0 && !options.destroyLater) {
      throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot roll volume ${volume} back to ${snapshot}: later snapshots ${later.map((s) => s.name).join(', ')} exist (roll back with destroyLater)`, { volume, snapshot, later: later.map((s) => s.name) });
    }
    for (const s of later) this.assertSnapshotDestroyable(tree, volume, s.name, s.full, numberProp(s.props, 'userrefs'));
    await this.datasets.zfs(['rollback', ...(later.length > 0 ? ['-r'] : []), `${d.dataset}@${snapshot}`], `roll volume ${volume} back to ${snapshot}`, { volume, snapshot });
  }

  async promote(volume: string): Promise<void> {
    assertVolumeName(volume);
    const tree = await this.datasets.tree(false);
    const d = volumeRow(tree, volume);
    const origin = stringProp(d.props, 'origin');
    if (origin === undefined) throw new DisklessError('STORE_NOT_CLONE', `cannot promote volume ${volume}: it is not a clone (it has no origin snapshot)`, { volume, field: 'origin' });
    // The origin's snapshots up to the clone point move here: a name taken on both sides is refused (zfs: "conflicting snapshot name").
    const originDataset = origin.slice(0, origin.indexOf('@'));
    const originRow = [...tree.volumes.values()].find((v) => v.dataset === originDataset);
    if (originRow) {
      const moving = originRow.snapshots.slice(0, originRow.snapshots.findIndex((s) => s.full === origin) + 1).map((s) => s.name);
      const taken = moving.filter((m) => d.snapshots.some((s) => s.name === m));
      if (taken.length > 0) throw new DisklessError('STORE_EXISTS', `cannot promote volume ${volume}: snapshots ${taken.join(', ')} of its origin would take names it already has`, { volume, snapshots: taken });
    }
    await this.datasets.zfs(['promote', d.dataset], `promote volume ${volume}`, { volume });
  }

  async hold(volume: string, snapshot: string, tag: string): Promise<void> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    assertName(tag, 'tag');
    this.requireHolds('hold a snapshot of', volume);
    const tree = await this.datasets.tree(false);
    const s = snapshotRow(tree, volume, snapshot);
    await this.datasets.zfs(['hold', tag, s.full], `hold ${volume}@${snapshot} with tag ${tag}`, { volume, snapshot, tag });
    if (!this.features.holdsCommand) {
      // zfs-fuse cannot list hold tags: keep them in a user property beside the real holds.
      const tags = new Set(recordedHoldTags(s.props));
      tags.add(tag);
      await this.datasets.zfs(['set', `diskless:holds=${[...tags].sort().join(',')}`, s.full], `record hold ${tag} on ${volume}@${snapshot}`, { volume, snapshot, tag });
    }
  }

  async release(volume: string, snapshot: string, tag: string): Promise<void> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    assertName(tag, 'tag');
    this.requireHolds('release a snapshot of', volume);
    const tree = await this.datasets.tree(false);
    const s = snapshotRow(tree, volume, snapshot);
    await this.datasets.zfs(['release', tag, s.full], `release hold ${tag} on ${volume}@${snapshot}`, { volume, snapshot, tag });
    if (!this.features.holdsCommand) {
      const tags = recordedHoldTags(s.props).filter((t) => t !== tag);
      await this.datasets.zfs(tags.length > 0 ? ['set', `diskless:holds=${tags.join(',')}`, s.full] : ['inherit', 'diskless:holds', s.full], `forget hold ${tag} on ${volume}@${snapshot}`, { volume, snapshot, tag });
    }
  }

  // ---- streams (ZfsSendReceive) ----

  send(volume: string, snapshot: string, options: SendOptions = {}): AsyncIterable<Buffer> {
    return { [Symbol.asyncIterator]: () => this.streams.send(volume, snapshot, options)[Symbol.asyncIterator]() };
  }

  receive(name: string, stream: AsyncIterable<Buffer>, options: ReceiveOptions = {}): Promise<SnapshotInfo> {
    return this.streams.receive(name, stream, options);
  }

  receiveResumeToken(name: string): Promise<string | undefined> {
    return this.streams.receiveResumeToken(name);
  }

  abortReceive(name: string): Promise<void> {
    return this.streams.abortReceive(name);
  }

  // ---- scrub ----

  /**
   * Scrubs the whole pool (ZFS cannot scrub one dataset) and waits for it. With `volume`, checks
   * it exists and reports its `used` as bytes checked; the counters are the pool's: errors are
   * the leaf devices' READ+CKSUM counters gained during this scrub, unrecoverable the
   * "with N errors" of the scrub line, repaired the difference.
   */
  async scrub(volume?: string): Promise<ScrubReport> {
    if (volume !== undefined) assertVolumeName(volume);
    const tree = await this.datasets.tree(true);
    const d = volume !== undefined ? volumeRow(tree, volume) : undefined;
    const before = await this.status();
    const errorCount = (s: typeof before): number => s.devices.reduce((n, v) => n + v.read + v.cksum, 0);
    await this.datasets.zpool(['scrub', this.pool], `scrub pool ${this.pool}`);
    let after = await this.status();
    while (after.scrub.kind === 'running') {
      await new Promise((r) => setTimeout(r, this.scrubPollMs));
      after = await this.status();
    }
    if (after.scrub.kind !== 'completed') {
      throw new DisklessError('STORE_ZFS', `cannot scrub pool ${this.pool}: the scrub ended as ${after.scrub.kind}`, { pool: this.pool, scrub: after.scrub.kind });
    }
    const poolBytes = numberProp(new Map([['used', (await this.datasets.zfs(['get', '-Hp', '-o', 'value', 'used', this.pool], `read used of ${this.pool}`)).trim()]]), 'used');
    const checked = d ? numberProp(d.props, 'used') : poolBytes;
    return scrubCounters(volume, checked, Math.max(0, errorCount(after) - errorCount(before)), after.scrub.errors);
  }

  close(): Promise<void> {
    return Promise.resolve(); // every call runs its own commands; open devices own their handles
  }

  // ---- internals ----

  private async status(): Promise<ReturnType<typeof decodeZpoolStatus>> {
    return decodeZpoolStatus(await this.datasets.zpool(['status', this.pool], `read the status of pool ${this.pool}`));
  }

  /** Refuses (before any command runs) to destroy a snapshot that is held, cloned, or open. */
  private assertSnapshotDestroyable(tree: ZfsTree, volume: string, snapshot: string, full: string, userrefs: number): void {
    if (userrefs > 0) throw new DisklessError('STORE_HELD', `cannot destroy snapshot ${volume}@${snapshot}: it has ${userrefs} hold(s)`, { volume, snapshot, holds: userrefs });
    const clones = clonesOf(tree, full);
    if (clones.length > 0) throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot destroy snapshot ${volume}@${snapshot}: clones ${clones.join(', ')} depend on it`, { volume, snapshot, clones });
    if (internalClonesOf(tree, full).length > 0) throw new DisklessError('STORE_BUSY', `cannot destroy snapshot ${volume}@${snapshot}: it is open`, { volume, snapshot });
  }

  private requireHolds(op: string, volume: string): void {
    if (!this.capabilities.holds) throw zfsUnsupported(op, volume, `pool ${this.pool} (version ${this.features.poolVersion}) has no user holds (version 18)`);
  }
}

/** `options.commandTimeoutMs`, checked, or the default. */
function commandTimeout(options: ZfsStorageDriverOptions): number {
  const t = options.commandTimeoutMs ?? ZFS_COMMAND_TIMEOUT_MS;
  if (!Number.isSafeInteger(t) || t < 1 || t > MAX_ZFS_COMMAND_TIMEOUT_MS) {
    throw new DisklessError('CONFIG_INVALID', `cannot open the zfs driver: commandTimeoutMs is ${String(t)}: allowed 1..${MAX_ZFS_COMMAND_TIMEOUT_MS}`, { field: 'commandTimeoutMs', value: t, allowed: `1..${MAX_ZFS_COMMAND_TIMEOUT_MS}` });
  }
  return t;
}

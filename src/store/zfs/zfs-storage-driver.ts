import { constants as fsc } from 'node:fs';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import type { BlockDevice } from '../block-device.js';
import type { CreateVolumeOptions, OpenVolumeOptions, ReceiveOptions, ScrubReport, SendOptions, SnapshotInfo, StorageDriver, StorageDriverCapabilities, VolumeInfo } from '../storage-driver.js';
import { assertName, assertVolumeName } from '../volume-name.js';
import { copySparse, DEFAULT_BLOCK_SIZE, resolveCreate } from '../create-options.js';
import { processAlive } from '../process-alive.js';
import { FileBlockDevice, type WarnLog } from '../file/file-block-device.js';
import { blockAllocation } from '../file/block-allocation.js';
import { DEFAULT_ZFS_PROGRAMS, runZfs, spawnZfs, zfsError, type ZfsPrograms } from './zfs-command.js';
import { detectZfsFeatures, type ZfsFeatures } from './zfs-features.js';
import { decodeZfsStreamBegin, ZFS_RECORD_HEADER_BYTES, ZfsStreamFramer, type ZfsStreamBegin } from './zfs-stream.js';
import { decodeZfsTree, derivedWritten, internalClonesOf, clonesOf, isoCreation, numberProp, scrubCounters, snapshotInfo, stringProp, volumeOrigin, type ZfsDataset, type ZfsTree } from './zfs-tree.js';
import { ZfsVolumeDevice } from './zfs-volume-device.js';
import { decodeZpoolStatus } from './zpool-status.js';

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
}

/** Format of `volume.json`, the sidecar inside each file-backed volume's dataset. */
export const ZFS_VOLUME_FORMAT_VERSION = 1;
const IMAGE_FILE = 'volume.img';
const SIDECAR_FILE = 'volume.json';
const SPARSE_GRAIN = 4096;
/** Internal datasets (snapshot-open clones) start with "_", which no volume name may. */
const OPEN_CLONE_PREFIX = '_open-';
/**
 * zfs-fuse says "busy" for a while after the last file on a dataset closed (FUSE releases
 * files asynchronously): destroy and mount are retried up to BUSY_RETRIES x BUSY_RETRY_MS.
 * Measured: usually 1 retry, under load of parallel tests up to a few seconds.
 */
const BUSY_RETRIES = 100;
const BUSY_RETRY_MS = 50;
/** Properties every tree read fetches (plus `written`/`guid` where the pool has them). */
const TREE_PROPS = ['type', 'creation', 'used', 'referenced', 'usedbydataset', 'origin', 'userrefs', 'mountpoint', 'mounted', 'volsize', 'diskless:guid', 'diskless:origin', 'diskless:import-path', 'diskless:holds', 'diskless:blocksize'];

interface Sidecar {
  readonly format: 'diskless-zfs-volume';
  readonly version: number;
  readonly size: number;
  readonly blockSize: number;
}

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
  private readonly programs: ZfsPrograms;
  private readonly log: WarnLog | undefined;
  private readonly scrubPollMs: number;
  private settleCounter = 0;

  private constructor(options: ZfsStorageDriverOptions, features: ZfsFeatures, unmap: boolean) {
    this.root = options.dataset;
    this.pool = options.dataset.split('/')[0]!;
    this.programs = options.programs ?? DEFAULT_ZFS_PROGRAMS;
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
   * Throws STORE_NOT_FOUND when the pool does not exist, STORE_INVALID_NAME for a bad name.
   */
  static async open(options: ZfsStorageDriverOptions): Promise<ZfsStorageDriver> {
    const root = options.dataset;
    if (typeof root !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:-]*(\/[A-Za-z0-9_.:-]+)*$/.test(root) || root.length > 200) {
      throw new DisklessError('STORE_INVALID_NAME', `cannot use zfs dataset ${JSON.stringify(root)}: allowed is pool[/dataset...] of letters, digits, _ . : -`, { field: 'dataset', value: root });
    }
    const programs = options.programs ?? DEFAULT_ZFS_PROGRAMS;
    const zfs = (args: string[], what: string): Promise<string> => runZfs(programs.zfs, args, what, { dataset: root });
    try {
      await zfs(['list', '-H', '-o', 'name', root], `open dataset ${root}`);
    } catch (err) {
      if (!isDisklessError(err, 'STORE_NOT_FOUND')) throw err;
      await zfs(['create', '-p', '-o', 'atime=off', root], `create dataset ${root}`);
    }
    const atime = (await zfs(['get', '-H', '-o', 'value', 'atime', root], `read atime of ${root}`)).trim();
    if (atime !== 'off') await zfs(['set', 'atime=off', root], `set atime=off on ${root}`);
    const features = await detectZfsFeatures(programs, root.split('/')[0]!, root);
    let unmap = false;
    if (!features.zvols) {
      const mountpoint = (await zfs(['get', '-H', '-o', 'value', 'mountpoint', root], `read the mountpoint of ${root}`)).trim();
      if (!mountpoint.startsWith('/')) {
        throw new DisklessError('STORE_UNSUPPORTED', `cannot use dataset ${root} for file volumes: its mountpoint is ${mountpoint}, and this platform has no zvols (set a mountpoint)`, { dataset: root, field: 'mountpoint', value: mountpoint });
      }
      unmap = await probePunchHole(mountpoint);
    }
    const driver = new ZfsStorageDriver(options, features, unmap);
    await driver.cleanStaleClones();
    return driver;
  }

  // ---- volumes ----

  async create(name: string, options: CreateVolumeOptions): Promise<VolumeInfo> {
    const { blockSize, size } = await resolveCreate(name, options);
    if (await this.exists(name)) throw new DisklessError('STORE_EXISTS', `cannot create volume ${name}: it already exists`, { volume: name });
    const ds = this.ds(name);
    const props = ['-o', `diskless:origin=${options.from !== undefined ? 'import' : 'empty'}`, '-o', `diskless:blocksize=${blockSize}`];
    if (options.from !== undefined) props.push('-o', `diskless:import-path=${options.from}`);
    if (this.features.zvols) {
      await this.zfs(['create', '-s', '-V', String(size), '-o', `volblocksize=${Math.max(blockSize, 4096)}`, ...props, ds], `create volume ${name}`, { volume: name });
    } else {
      await this.zfs(['create', '-o', 'atime=off', ...props, ds], `create volume ${name}`, { volume: name });
    }
    try {
      const path = await this.imagePath(name);
      await this.fsCall('create', name, async () => {
        const fh = await open(path, this.features.zvols ? fsc.O_RDWR : fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, 0o600);
        try {
          if (options.from !== undefined) await copySparse(options.from, fh);
          if (!this.features.zvols) await fh.truncate(size);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        if (!this.features.zvols) await this.writeSidecar(name, { format: 'diskless-zfs-volume', version: ZFS_VOLUME_FORMAT_VERSION, size, blockSize });
      });
    } catch (err) {
      await this.zfs(['destroy', ds], `destroy half-created volume ${name}`).catch(() => undefined);
      throw err;
    }
    return this.info(name);
  }

  async list(): Promise<VolumeInfo[]> {
    const tree = await this.tree(true);
    const out: VolumeInfo[] = [];
    for (const d of tree.volumes.values()) out.push(await this.volumeInfo(d));
    return out;
  }

  exists(name: string): Promise<boolean> {
    try {
      assertVolumeName(name);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.zfs(['list', '-H', '-o', 'name', this.ds(name)], `look up volume ${name}`, { volume: name }).then(
      () => true,
      (err: unknown) => {
        if (isDisklessError(err, 'STORE_NOT_FOUND')) return false;
        throw err;
      },
    );
  }

  async info(name: string): Promise<VolumeInfo> {
    assertVolumeName(name);
    const tree = await this.tree(true);
    return this.volumeInfo(this.volume(tree, name));
  }

  async open(name: string, options: OpenVolumeOptions & { readonly snapshot?: string } = {}): Promise<BlockDevice> {
    assertVolumeName(name);
    if (options.snapshot !== undefined) return this.openSnapshot(name, options.snapshot);
    const tree = await this.tree(false);
    const d = this.volume(tree, name);
    const readOnly = options.readOnly ?? false;
    const { size, blockSize } = await this.geometry(d);
    const path = await this.imagePath(name, d);
    const fh = await this.fsCall('open', name, () => open(path, readOnly ? 'r' : 'r+'));
    return new ZfsVolumeDevice(new FileBlockDevice(fh, size, blockSize, readOnly, name, this.log ? { log: this.log } : {}));
  }

  async destroy(name: string, options: { readonly recursive?: boolean } = {}): Promise<void> {
    assertVolumeName(name);
    const tree = await this.tree(false);
    const d = this.volume(tree, name);
    if (d.snapshots.length > 0 && !options.recursive) {
      throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot destroy volume ${name}: it has snapshots ${d.snapshots.map((s) => s.name).join(', ')} (destroy them, or destroy recursively)`, { volume: name, snapshots: d.snapshots.map((s) => s.name) });
    }
    for (const s of d.snapshots) this.assertSnapshotDestroyable(tree, name, s.name, s.full, numberProp(s.props, 'userrefs'));
    await this.destroyDataset(this.ds(name), options.recursive ? ['-r'] : [], `destroy volume ${name}`, { volume: name });
  }

  // ---- snapshots ----

  async listSnapshots(volume?: string): Promise<SnapshotInfo[]> {
    if (volume !== undefined) assertVolumeName(volume);
    const tree = await this.tree(false);
    const vols = volume !== undefined ? [this.volume(tree, volume)] : [...tree.volumes.values()];
    const out: SnapshotInfo[] = [];
    for (const d of vols) for (let i = 0; i < d.snapshots.length; i++) out.push(await this.snapshotInfo(tree, d, i));
    return out;
  }

  async snapshot(volume: string, snapshot: string): Promise<SnapshotInfo> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    const tree = await this.tree(false);
    const d = this.volume(tree, volume);
    if (d.snapshots.some((s) => s.name === snapshot)) throw new DisklessError('STORE_EXISTS', `cannot snapshot volume ${volume}: snapshot ${snapshot} exists`, { volume, snapshot });
    await this.zfs(['snapshot', `${d.dataset}@${snapshot}`], `snapshot volume ${volume} as ${snapshot}`, { volume, snapshot });
    return this.findSnapshot(volume, snapshot);
  }

  async destroySnapshot(volume: string, snapshot: string): Promise<void> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    const tree = await this.tree(false);
    const s = this.snapshotRow(tree, volume, snapshot);
    this.assertSnapshotDestroyable(tree, volume, snapshot, s.full, numberProp(s.props, 'userrefs'));
    await this.destroyDataset(s.full, [], `destroy snapshot ${volume}@${snapshot}`, { volume, snapshot });
  }

  async clone(volume: string, snapshot: string, name: string): Promise<VolumeInfo> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    assertVolumeName(name);
    const tree = await this.tree(false);
    const s = this.snapshotRow(tree, volume, snapshot);
    if (tree.volumes.has(name)) throw new DisklessError('STORE_EXISTS', `cannot clone ${volume}@${snapshot} as ${name}: volume ${name} exists`, { volume: name });
    await this.zfs(['clone', ...(this.features.zvols ? [] : ['-o', 'atime=off']), s.full, this.ds(name)], `clone ${volume}@${snapshot} as ${name}`, { volume, snapshot, clone: name });
    return this.info(name);
  }

  async rollback(volume: string, snapshot: string, options: { readonly destroyLater?: boolean } = {}): Promise<void> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    const tree = await this.tree(false);
    const d = this.volume(tree, volume);
    const index = d.snapshots.findIndex((s) => s.name === snapshot);
    if (index < 0) throw notFoundSnapshot(volume, snapshot);
    const later = d.snapshots.slice(index + 1);
    if (later.length > 0 && !options.destroyLater) {
      throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot roll volume ${volume} back to ${snapshot}: later snapshots ${later.map((s) => s.name).join(', ')} exist (roll back with destroyLater)`, { volume, snapshot, later: later.map((s) => s.name) });
    }
    for (const s of later) this.assertSnapshotDestroyable(tree, volume, s.name, s.full, numberProp(s.props, 'userrefs'));
    await this.zfs(['rollback', ...(later.length > 0 ? ['-r'] : []), `${d.dataset}@${snapshot}`], `roll volume ${volume} back to ${snapshot}`, { volume, snapshot });
  }

  async promote(volume: string): Promise<void> {
    assertVolumeName(volume);
    const tree = await this.tree(false);
    const d = this.volume(tree, volume);
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
    await this.zfs(['promote', d.dataset], `promote volume ${volume}`, { volume });
  }

  async hold(volume: string, snapshot: string, tag: string): Promise<void> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    assertName(tag, 'tag');
    this.requireHolds('hold a snapshot of', volume);
    const tree = await this.tree(false);
    const s = this.snapshotRow(tree, volume, snapshot);
    await this.zfs(['hold', tag, s.full], `hold ${volume}@${snapshot} with tag ${tag}`, { volume, snapshot, tag });
    if (!this.features.holdsCommand) {
      // zfs-fuse cannot list hold tags: keep them in a user property beside the real holds.
      const tags = new Set(splitTags(s.props.get('diskless:holds')));
      tags.add(tag);
      await this.zfs(['set', `diskless:holds=${[...tags].sort().join(',')}`, s.full], `record hold ${tag} on ${volume}@${snapshot}`, { volume, snapshot, tag });
    }
  }

  async release(volume: string, snapshot: string, tag: string): Promise<void> {
    assertVolumeName(volume);
    assertName(snapshot, 'snapshot');
    assertName(tag, 'tag');
    this.requireHolds('release a snapshot of', volume);
    const tree = await this.tree(false);
    const s = this.snapshotRow(tree, volume, snapshot);
    await this.zfs(['release', tag, s.full], `release hold ${tag} on ${volume}@${snapshot}`, { volume, snapshot, tag });
    if (!this.features.holdsCommand) {
      const tags = splitTags(s.props.get('diskless:holds')).filter((t) => t !== tag);
      await this.zfs(tags.length > 0 ? ['set', `diskless:holds=${tags.join(',')}`, s.full] : ['inherit', 'diskless:holds', s.full], `forget hold ${tag} on ${volume}@${snapshot}`, { volume, snapshot, tag });
    }
  }

  // ---- streams ----

  send(volume: string, snapshot: string, options: SendOptions = {}): AsyncIterable<Buffer> {
    return { [Symbol.asyncIterator]: () => this.sendStream(volume, snapshot, options)[Symbol.asyncIterator]() };
  }

  private async *sendStream(volume: string, snapshot: string, options: SendOptions): AsyncGenerator<Buffer> {
    assertVolumeName(volume);
    if (options.resumeToken !== undefined) {
      if (!this.capabilities.resumableReceive) throw this.unsupported('resume a send of', volume, 'resumable receive (zfs send -t) needs feature@extensible_dataset');
      yield* this.streamFrom(['send', '-t', options.resumeToken], `send volume ${volume} from a resume token`, { volume });
      return;
    }
    assertName(snapshot, 'snapshot');
    const tree = await this.tree(false);
    const s = this.snapshotRow(tree, volume, snapshot);
    const args = ['send'];
    if (options.base !== undefined) {
      assertName(options.base, 'base');
      const d = this.volume(tree, volume);
      const baseIndex = d.snapshots.findIndex((x) => x.name === options.base);
      if (baseIndex < 0) throw notFoundSnapshot(volume, options.base);
      if (baseIndex >= d.snapshots.findIndex((x) => x.name === snapshot)) {
        throw new DisklessError('STORE_STREAM_INVALID', `cannot send ${volume}@${snapshot} incrementally from ${options.base}: the base is not an earlier snapshot`, { volume, snapshot, field: 'base', value: options.base });
      }
      args.push('-i', `${d.dataset}@${options.base}`);
    }
    args.push(s.full);
    yield* this.streamFrom(args, `send ${volume}@${snapshot}`, { volume, snapshot });
  }

  /** Runs `zfs <args>` and yields its stdout; a non-zero exit throws after the last chunk. Stopping early kills it. */
  private async *streamFrom(args: string[], what: string, context: Record<string, unknown>): AsyncGenerator<Buffer> {
    const proc = spawnZfs(this.programs.zfs, args, 'ignore');
    let finished = false;
    try {
      for await (const chunk of proc.child.stdout! as AsyncIterable<Buffer>) yield chunk;
      const end = await proc.done;
      finished = true;
      if (end.status !== 0) throw zfsError(end, what, context);
    } finally {
      if (!finished) {
        proc.child.kill('SIGTERM');
        await proc.done;
      }
    }
  }

  async receive(name: string, stream: AsyncIterable<Buffer>, options: ReceiveOptions = {}): Promise<SnapshotInfo> {
    assertVolumeName(name);
    if (options.resumable && !this.capabilities.resumableReceive) {
      throw this.unsupported('receive resumably into', name, `pool ${this.pool} (version ${this.features.poolVersion}) has no resumable receive (zfs receive -s)`);
    }
    const iterator = stream[Symbol.asyncIterator]();
    try {
      return await this.receiveFrom(name, iterator, options);
    } finally {
      // A refused or failed receive stops reading: let the source clean up (a local `zfs send` is killed).
      await iterator.return?.().catch(() => undefined);
    }
  }

  private async receiveFrom(name: string, iterator: AsyncIterator<Buffer>, options: ReceiveOptions): Promise<SnapshotInfo> {
    // The header decides full vs incremental and names the snapshot before zfs runs.
    const head: Buffer[] = [];
    let headBytes = 0;
    let sourceDone = false;
    while (headBytes < ZFS_RECORD_HEADER_BYTES) {
      const r = await iterator.next();
      if (r.done) {
        sourceDone = true;
        break;
      }
      head.push(r.value);
      headBytes += r.value.length;
    }
    const begin = decodeZfsStreamBegin(Buffer.concat(head));
    assertName(begin.snapshot, 'snapshot');
    const tree = await this.tree(false);
    const existing = tree.volumes.get(name);
    if (begin.fromGuid === undefined) {
      if (existing) throw new DisklessError('STORE_EXISTS', `cannot receive a full stream into volume ${name}: it exists`, { volume: name, snapshot: begin.snapshot });
    } else {
      if (!existing) throw new DisklessError('STORE_NOT_FOUND', `cannot receive an incremental stream into volume ${name}: it does not exist`, { volume: name });
      const latest = existing.snapshots[existing.snapshots.length - 1];
      const latestGuid = latest ? await this.guidOf(latest.full, latest.props) : undefined;
      if (latestGuid !== begin.fromGuid) {
        throw new DisklessError('STORE_STREAM_INVALID', `cannot receive into volume ${name}: the stream's base (guid ${begin.fromGuid}) is not its latest snapshot (${latest ? `${latest.name}, guid ${latestGuid}` : 'none'})`, { volume: name, fromGuid: begin.fromGuid, latest: latest?.name, latestGuid });
      }
      if (existing.snapshots.some((s) => s.name === begin.snapshot)) throw new DisklessError('STORE_EXISTS', `cannot receive snapshot ${begin.snapshot} into volume ${name}: it exists`, { volume: name, snapshot: begin.snapshot });
    }
    const ds = this.ds(name);
    const args = ['receive', ...(options.resumable ? ['-s'] : []), ...(options.force ? ['-F'] : []), ds];
    await this.pipeInto(args, head, sourceDone ? undefined : iterator, `receive into volume ${name}`, { volume: name, snapshot: begin.snapshot }, options.resumable === true);
    await this.afterReceive(name, begin);
    return this.findSnapshot(name, begin.snapshot);
  }

  /** Feeds `head` then the rest of `iterator` to `zfs <args>` through a ZfsStreamFramer; rejects with the mapped error. */
  private async pipeInto(args: string[], head: Buffer[], iterator: AsyncIterator<Buffer> | undefined, what: string, context: Record<string, unknown>, resumable: boolean): Promise<void> {
    const proc = spawnZfs(this.programs.zfs, args, 'pipe');
    const stdin = proc.child.stdin!;
    let exited = false;
    // zfs-fuse's client hands the pipe to the daemon, which keeps its end open after a refusal: a
    // blocked write then never sees EPIPE, so waiting for room also stops when the client exits.
    const exit = proc.done.then(() => {
      exited = true;
    });
    stdin.on('error', () => undefined); // EPIPE when zfs gives up early: its exit status says why
    const framer = new ZfsStreamFramer();
    const write = async (bufs: Buffer[]): Promise<void> => {
      for (const b of bufs) {
        if (exited || b.length === 0) continue;
        if (!stdin.write(b)) {
          let done = (): void => undefined;
          await Promise.race([
            exit,
            new Promise<void>((resolve) => {
              done = resolve;
              stdin.on('drain', done);
              stdin.on('close', done);
            }),
          ]);
          stdin.off('drain', done);
          stdin.off('close', done);
        }
      }
    };
    let refusal: unknown;
    try {
      for (const b of head) await write(framer.push(b));
      if (iterator) {
        for (;;) {
          if (exited) break;
          const r = await iterator.next();
          if (r.done) break;
          await write(framer.push(r.value));
        }
      }
      await write(framer.finish());
    } catch (err) {
      // Trailing garbage or an unreadable source: end zfs's input without the END record so it fails and keeps nothing.
      refusal = err;
    }
    if (exited) stdin.destroy();
    else stdin.end();
    const end = await proc.done;
    if (refusal !== undefined) {
      if (end.status === 0) await this.undoReceive(context['volume'] as string, context['snapshot'] as string);
      throw refusal;
    }
    if (end.status !== 0) {
      const err = zfsError(end, what, context, true);
      if (resumable && this.capabilities.resumableReceive) {
        const token = await this.receiveResumeToken(context['volume'] as string).catch(() => undefined);
        if (token !== undefined) throw new DisklessError('STORE_RECEIVE_INTERRUPTED', `${err.message} (resumable: send again with the resume token)`, { ...err.data, resumeToken: token }, { cause: err });
      }
      throw err;
    }
  }

  /** A receive that zfs completed although the framer refused the stream (cannot happen with the END record held back): undo it. */
  private async undoReceive(volume: string, snapshot: string): Promise<void> {
    const tree = await this.tree(false);
    const d = tree.volumes.get(volume);
    if (!d) return;
    if (d.snapshots.length <= 1) await this.destroyDataset(d.dataset, ['-r'], `undo receive into ${volume}`, { volume });
    else await this.destroyDataset(`${d.dataset}@${snapshot}`, [], `undo receive into ${volume}`, { volume });
  }

  /** Records what a received volume is, the snapshot's guid, and refreshes the FUSE mount (zfs-fuse serves stale pages after a receive). */
  private async afterReceive(name: string, begin: ZfsStreamBegin): Promise<void> {
    const ds = this.ds(name);
    if (begin.fromGuid === undefined) await this.zfs(['set', 'diskless:origin=receive', ds], `record the origin of received volume ${name}`, { volume: name });
    if (!this.features.guidProperty) await this.zfs(['set', `diskless:guid=${begin.toGuid}`, `${ds}@${begin.snapshot}`], `record the guid of ${name}@${begin.snapshot}`, { volume: name });
    if (!this.features.zvols && begin.fromGuid !== undefined) await this.remount(ds, name);
  }

  receiveResumeToken(name: string): Promise<string | undefined> {
    try {
      assertVolumeName(name);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.capabilities.resumableReceive) return Promise.reject(this.unsupported('resume a receive into', name, `pool ${this.pool} has no resumable receive`));
    return this.zfs(['get', '-H', '-o', 'value', 'receive_resume_token', this.ds(name)], `read the resume token of ${name}`, { volume: name }).then(
      (out) => (out.trim() === '-' || out.trim() === '' ? undefined : out.trim()),
      (err: unknown) => {
        if (isDisklessError(err, 'STORE_NOT_FOUND')) return undefined;
        throw err;
      },
    );
  }

  async abortReceive(name: string): Promise<void> {
    assertVolumeName(name);
    if (!this.capabilities.resumableReceive) throw this.unsupported('abort a receive into', name, `pool ${this.pool} has no resumable receive`);
    if ((await this.receiveResumeToken(name)) === undefined) throw new DisklessError('STORE_NOT_FOUND', `cannot abort a receive into ${name}: none is pending`, { volume: name });
    await this.zfs(['receive', '-A', this.ds(name)], `abort the receive into ${name}`, { volume: name });
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
    const tree = await this.tree(true);
    const d = volume !== undefined ? this.volume(tree, volume) : undefined;
    const before = await this.status();
    const errorCount = (s: typeof before): number => s.devices.reduce((n, v) => n + v.read + v.cksum, 0);
    await this.zpool(['scrub', this.pool], `scrub pool ${this.pool}`);
    let after = await this.status();
    while (after.scrub.kind === 'running') {
      await new Promise((r) => setTimeout(r, this.scrubPollMs));
      after = await this.status();
    }
    if (after.scrub.kind !== 'completed') {
      throw new DisklessError('STORE_ZFS', `cannot scrub pool ${this.pool}: the scrub ended as ${after.scrub.kind}`, { pool: this.pool, scrub: after.scrub.kind });
    }
    const poolBytes = numberProp(new Map([['used', (await this.zfs(['get', '-Hp', '-o', 'value', 'used', this.pool], `read used of ${this.pool}`)).trim()]]), 'used');
    const checked = d ? numberProp(d.props, 'used') : poolBytes;
    return scrubCounters(volume, checked, Math.max(0, errorCount(after) - errorCount(before)), after.scrub.errors);
  }

  close(): Promise<void> {
    return Promise.resolve(); // every call runs its own commands; open devices own their handles
  }

  // ---- internals ----

  private ds(name: string): string {
    return `${this.root}/${name}`;
  }

  private zfs(args: string[], what: string, context: Record<string, unknown> = {}): Promise<string> {
    return runZfs(this.programs.zfs, args, what, context);
  }

  private zpool(args: string[], what: string): Promise<string> {
    return runZfs(this.programs.zpool, args, what, { pool: this.pool });
  }

  private async status(): Promise<ReturnType<typeof decodeZpoolStatus>> {
    return decodeZpoolStatus(await this.zpool(['status', this.pool], `read the status of pool ${this.pool}`));
  }

  /**
   * Reads the tree. `settle`: first wait for the pool to commit pending writes (a `zfs set`
   * is a sync task that waits for the open transaction group), because space figures only
   * count synced blocks: without it `info` right after a write reads the old numbers.
   */
  private async tree(settle: boolean): Promise<ZfsTree> {
    if (settle) await this.zfs(['set', `diskless:settled=${process.pid}.${++this.settleCounter}`, this.root], `settle pool ${this.pool}`);
    const props = [...TREE_PROPS, ...(this.features.writtenProperty ? ['written'] : []), ...(this.features.guidProperty ? ['guid'] : [])];
    const out = await this.zfs(['get', '-Hp', '-r', '-d', '2', '-o', 'name,property,value', props.join(','), this.root], `list the volumes of ${this.root}`);
    return decodeZfsTree(this.root, out);
  }

  private volume(tree: ZfsTree, name: string): ZfsDataset {
    const d = tree.volumes.get(name);
    if (!d) throw new DisklessError('STORE_NOT_FOUND', `cannot find volume ${name}`, { volume: name });
    return d;
  }

  private snapshotRow(tree: ZfsTree, volume: string, snapshot: string): ZfsDataset['snapshots'][number] {
    const s = this.volume(tree, volume).snapshots.find((x) => x.name === snapshot);
    if (!s) throw notFoundSnapshot(volume, snapshot);
    return s;
  }

  private async findSnapshot(volume: string, snapshot: string): Promise<SnapshotInfo> {
    const tree = await this.tree(false);
    const d = this.volume(tree, volume);
    const i = d.snapshots.findIndex((s) => s.name === snapshot);
    if (i < 0) throw notFoundSnapshot(volume, snapshot);
    return this.snapshotInfo(tree, d, i);
  }

  private async snapshotInfo(tree: ZfsTree, d: ZfsDataset, index: number): Promise<SnapshotInfo> {
    const s = d.snapshots[index]!;
    const guid = await this.guidOf(s.full, s.props);
    const userrefs = numberProp(s.props, 'userrefs');
    let holds: string[] = [];
    if (userrefs > 0) {
      if (this.features.holdsCommand) {
        const out = await this.zfs(['holds', '-H', s.full], `list the holds of ${s.full}`);
        holds = out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t')[1] ?? '');
      } else {
        holds = splitTags(s.props.get('diskless:holds'));
        // Holds placed outside this driver have no recorded tag: show that they exist.
        for (let i = holds.length; i < userrefs; i++) holds.push(`(unknown-${i - holds.length + 1})`);
      }
    }
    return snapshotInfo(tree, d, index, guid, holds);
  }

  /**
   * The snapshot's ZFS guid: the `guid` property where it exists; else the recorded
   * `diskless:guid`; else read from the header of a send stream of it (zfs-fuse has no `guid`
   * property) and recorded for next time.
   */
  private async guidOf(full: string, props: ReadonlyMap<string, string>): Promise<string> {
    const known = stringProp(props, 'guid') ?? stringProp(props, 'diskless:guid');
    if (known !== undefined) return known;
    const proc = spawnZfs(this.programs.zfs, ['send', full], 'ignore');
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of proc.child.stdout! as AsyncIterable<Buffer>) {
      parts.push(chunk);
      n += chunk.length;
      if (n >= ZFS_RECORD_HEADER_BYTES) break;
    }
    proc.child.kill('SIGTERM');
    const end = await proc.done;
    if (n < ZFS_RECORD_HEADER_BYTES) throw zfsError(end, `read the guid of ${full}`, { snapshot: full });
    const guid = decodeZfsStreamBegin(Buffer.concat(parts)).toGuid;
    await this.zfs(['set', `diskless:guid=${guid}`, full], `record the guid of ${full}`, { snapshot: full });
    return guid;
  }

  private async volumeInfo(d: ZfsDataset): Promise<VolumeInfo> {
    const { size, blockSize } = await this.geometry(d);
    return {
      name: d.name,
      size,
      blockSize,
      used: numberProp(d.props, 'used'),
      referenced: numberProp(d.props, 'referenced'),
      written: derivedWritten(d),
      createdAt: isoCreation(d.props),
      origin: volumeOrigin(this.root, d),
    };
  }

  /** Size and block size: the zvol's volsize, or the sidecar inside the dataset. */
  private async geometry(d: ZfsDataset): Promise<{ size: number; blockSize: number }> {
    if (this.features.zvols) {
      const bs = numberProp(d.props, 'diskless:blocksize');
      return { size: numberProp(d.props, 'volsize'), blockSize: bs === 4096 ? 4096 : DEFAULT_BLOCK_SIZE };
    }
    const dir = await this.mountpointOf(d);
    let text: string;
    try {
      text = await readFile(join(dir, SIDECAR_FILE), 'utf8');
    } catch (err) {
      throw new DisklessError('STORE_BAD_METADATA', `cannot read ${SIDECAR_FILE} of volume ${d.name}: ${(err as Error).message}`, { volume: d.name, path: join(dir, SIDECAR_FILE) }, { cause: err });
    }
    let m: Partial<Sidecar>;
    try {
      m = JSON.parse(text) as Partial<Sidecar>;
    } catch (err) {
      throw new DisklessError('STORE_BAD_METADATA', `cannot read ${SIDECAR_FILE} of volume ${d.name}: not JSON`, { volume: d.name }, { cause: err });
    }
    if (m.format !== 'diskless-zfs-volume' || m.version !== ZFS_VOLUME_FORMAT_VERSION || !Number.isSafeInteger(m.size) || (m.blockSize !== 512 && m.blockSize !== 4096)) {
      throw new DisklessError('STORE_BAD_METADATA', `cannot read ${SIDECAR_FILE} of volume ${d.name}: unexpected shape or version ${String(m.version)}`, { volume: d.name, version: m.version, allowedVersions: [ZFS_VOLUME_FORMAT_VERSION] });
    }
    return { size: m.size!, blockSize: m.blockSize };
  }

  private async writeSidecar(name: string, meta: Sidecar): Promise<void> {
    const dir = await this.mountpointOf(await this.datasetRow(name));
    const tmp = join(dir, `.${SIDECAR_FILE}.${randomBytes(4).toString('hex')}`);
    await writeFile(tmp, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600, flush: true });
    await rename(tmp, join(dir, SIDECAR_FILE));
  }

  private async datasetRow(name: string): Promise<ZfsDataset> {
    return this.volume(await this.tree(false), name);
  }

  /** The mounted directory of a file-backed dataset (mounting it when zfs has not). */
  private async mountpointOf(d: ZfsDataset): Promise<string> {
    const mp = stringProp(d.props, 'mountpoint');
    if (mp === undefined || !mp.startsWith('/')) {
      throw new DisklessError('STORE_UNSUPPORTED', `cannot use volume ${d.name}: dataset ${d.dataset} has mountpoint ${String(mp)}`, { volume: d.name, dataset: d.dataset, mountpoint: mp });
    }
    if (d.props.get('mounted') !== 'yes') await this.zfs(['mount', d.dataset], `mount volume ${d.name}`, { volume: d.name });
    return mp;
  }

  /** `<mountpoint>/volume.img`, or the zvol's device node. */
  private async imagePath(name: string, d?: ZfsDataset): Promise<string> {
    if (this.features.zvols) return `/dev/zvol/${this.ds(name)}`;
    return join(await this.mountpointOf(d ?? (await this.datasetRow(name))), IMAGE_FILE);
  }

  private async openSnapshot(volume: string, snapshot: string): Promise<BlockDevice> {
    assertName(snapshot, 'snapshot');
    const tree = await this.tree(false);
    const s = this.snapshotRow(tree, volume, snapshot);
    // zfs-fuse has no .zfs/snapshot directory (measured: ENOENT even with snapdir=visible), so a snapshot is read through a temporary read-only clone.
    const clone = `${this.root}/${OPEN_CLONE_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
    await this.zfs(['clone', '-o', 'readonly=on', s.full, clone], `open snapshot ${volume}@${snapshot}`, { volume, snapshot });
    // -f: FUSE releases the closed file asynchronously, so a plain destroy can say busy for a while; the clone is ours alone.
    const release = (): Promise<void> => this.destroyDataset(clone, ['-f'], `close snapshot ${volume}@${snapshot}`, { volume, snapshot });
    try {
      const row = (await this.tree(false)).internal.find((x) => x.dataset === clone);
      if (!row) throw new DisklessError('STORE_ZFS', `cannot open snapshot ${volume}@${snapshot}: clone ${clone} vanished`, { volume, snapshot });
      const { size, blockSize } = await this.geometry({ ...row, name: volume });
      const path = this.features.zvols ? `/dev/zvol/${clone}` : join(await this.mountpointOf(row), IMAGE_FILE);
      const fh = await this.fsCall('open', volume, () => open(path, 'r'));
      return new ZfsVolumeDevice(new FileBlockDevice(fh, size, blockSize, true, `${volume}@${snapshot}`, this.log ? { log: this.log } : {}), release);
    } catch (err) {
      await release().catch(() => undefined);
      throw err;
    }
  }

  /** Refuses (before any command runs) to destroy a snapshot that is held, cloned, or open. */
  private assertSnapshotDestroyable(tree: ZfsTree, volume: string, snapshot: string, full: string, userrefs: number): void {
    if (userrefs > 0) throw new DisklessError('STORE_HELD', `cannot destroy snapshot ${volume}@${snapshot}: it has ${userrefs} hold(s)`, { volume, snapshot, holds: userrefs });
    const clones = clonesOf(tree, full);
    if (clones.length > 0) throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot destroy snapshot ${volume}@${snapshot}: clones ${clones.join(', ')} depend on it`, { volume, snapshot, clones });
    if (internalClonesOf(tree, full).length > 0) throw new DisklessError('STORE_BUSY', `cannot destroy snapshot ${volume}@${snapshot}: it is open`, { volume, snapshot });
  }

  /** `zfs destroy`, retrying a moment when zfs-fuse says busy right after the last file closed. */
  private async destroyDataset(target: string, flags: string[], what: string, context: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.zfs(['destroy', ...flags, target], what, context);
        return;
      } catch (err) {
        if (!isDisklessError(err, 'STORE_BUSY') || attempt >= BUSY_RETRIES) throw err;
        await new Promise((r) => setTimeout(r, BUSY_RETRY_MS));
      }
    }
  }

  /** Unmounts and mounts `ds` again; the mount is retried while zfs-fuse still says busy from the unmount. */
  private async remount(ds: string, name: string): Promise<void> {
    await this.zfs(['unmount', ds], `remount volume ${name}`, { volume: name });
    for (let attempt = 0; ; attempt++) {
      try {
        await this.zfs(['mount', ds], `remount volume ${name}`, { volume: name });
        return;
      } catch (err) {
        if (!isDisklessError(err, 'STORE_BUSY') || attempt >= BUSY_RETRIES) throw err;
        await new Promise((r) => setTimeout(r, BUSY_RETRY_MS));
      }
    }
  }

  /** Destroys snapshot-open clones of processes that no longer run (a crash between open and close). */
  private async cleanStaleClones(): Promise<void> {
    const tree = await this.tree(false);
    for (const d of tree.internal) {
      const m = /^_open-(\d+)-/.exec(d.name);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid === process.pid || processAlive(pid)) continue;
      await this.destroyDataset(d.dataset, [], `destroy stale snapshot clone ${d.dataset}`, {}).catch((err: unknown) => this.log?.warn({ dataset: d.dataset, err: String(err) }, `cannot destroy stale snapshot clone ${d.dataset}`));
    }
  }

  private requireHolds(op: string, volume: string): void {
    if (!this.capabilities.holds) throw this.unsupported(op, volume, `pool ${this.pool} (version ${this.features.poolVersion}) has no user holds (version 18)`);
  }

  private unsupported(op: string, volume: string, why: string): DisklessError {
    return new DisklessError('STORE_UNSUPPORTED', `cannot ${op} volume ${volume}: ${why}`, { driver: this.name, operation: op, volume });
  }

  private async fsCall<T>(op: string, name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DisklessError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new DisklessError('STORE_NO_SPACE', `cannot ${op} volume ${name}: pool ${this.pool} is full`, { volume: name, operation: op, errno: code }, { cause: err });
      throw new DisklessError('STORE_IO', `cannot ${op} volume ${name}: ${(err as Error).message}`, { volume: name, operation: op, errno: code }, { cause: err });
    }
  }
}

/** Snapshot names and hold tags follow the volume-name rule (so they can never carry "@", "/" or ","). */

function notFoundSnapshot(volume: string, snapshot: string): DisklessError {
  return new DisklessError('STORE_NOT_FOUND', `cannot find snapshot ${volume}@${snapshot}`, { volume, snapshot });
}

function splitTags(v: string | undefined): string[] {
  return v === undefined || v === '-' || v === '' ? [] : v.split(',').filter((t) => t !== '');
}


/** True when holes can be punched in files under `dir` (zfs-fuse: no, fallocate EOPNOTSUPP). */
async function probePunchHole(dir: string): Promise<boolean> {
  const alloc = blockAllocation();
  if (!alloc) return false;
  const path = join(dir, `.diskless-punch-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dir, { recursive: true });
    const fh = await open(path, 'w+');
    try {
      await fh.truncate(2 * SPARSE_GRAIN);
      alloc.punchHoleSync(fh.fd, 0, SPARSE_GRAIN);
      return true;
    } catch {
      return false;
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  } finally {
    await unlink(path).catch(() => undefined);
  }
}


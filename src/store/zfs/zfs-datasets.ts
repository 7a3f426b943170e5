import { join } from 'node:path';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import { runZfs, spawnZfs, type ZfsPrograms, type ZfsProcess } from './zfs-command.js';
import type { ZfsFeatures } from './zfs-features.js';
import { IMAGE_FILE } from './zfs-sidecar.js';
import { decodeZfsTree, stringProp, volumeRow, type ZfsDataset, type ZfsTree } from './zfs-tree.js';

/**
 * zfs-fuse says "busy" for a while after the last file on a dataset closed (FUSE releases
 * files asynchronously): destroy and mount are retried up to BUSY_RETRIES x BUSY_RETRY_MS.
 * Measured: usually 1 retry, under load of parallel tests up to a few seconds.
 */
const BUSY_RETRIES = 100;
const BUSY_RETRY_MS = 50;
/** Properties every tree read fetches (plus `written`/`guid` where the pool has them). */
const TREE_PROPS = ['type', 'creation', 'used', 'referenced', 'usedbydataset', 'origin', 'userrefs', 'mountpoint', 'mounted', 'volsize', 'diskless:guid', 'diskless:origin', 'diskless:import-path', 'diskless:holds', 'diskless:blocksize'];

/**
 * The zfs driver's hands on its parent dataset: every zfs/zpool command it runs, the tree
 * read, mounts and image paths, and the zfs-fuse "busy" retries. One per driver, shared by
 * its parts (ZfsInventory, ZfsSendReceive, the snapshot-open clones); holds no state but a
 * settle counter.
 */
export class ZfsDatasets {
  /** The pool the parent dataset lives in. */
  readonly pool: string;
  private settleCounter = 0;

  constructor(
    /** The parent dataset; volumes are its children. */
    readonly root: string,
    readonly features: ZfsFeatures,
    private readonly programs: ZfsPrograms,
    /** How long one command may take (a stream: one wait on it) before it is killed: STORE_ZFS. */
    readonly commandTimeoutMs: number,
  ) {
    this.pool = root.split('/')[0]!;
  }

  /** The dataset of volume `name`. */
  ds(name: string): string {
    return `${this.root}/${name}`;
  }

  /** Runs `zfs <args>`; resolves with stdout, rejects with the mapped DisklessError ("cannot <what>"). */
  zfs(args: string[], what: string, context: Record<string, unknown> = {}): Promise<string> {
    return runZfs(this.programs.zfs, args, what, context, this.commandTimeoutMs);
  }

  /** Runs `zpool <args>` like `zfs`, with the pool in the error data. */
  zpool(args: string[], what: string): Promise<string> {
    return runZfs(this.programs.zpool, args, what, { pool: this.pool }, this.commandTimeoutMs);
  }

  /** Starts a streaming `zfs <args>` (send, receive); its `within` waits are bounded by the command timeout. */
  spawnZfs(args: string[], stdin: 'pipe' | 'ignore'): ZfsProcess {
    return spawnZfs(this.programs.zfs, args, stdin, this.commandTimeoutMs);
  }

  /**
   * Reads the tree. `settle`: first wait for the pool to commit pending writes (a `zfs set`
   * is a sync task that waits for the open transaction group), because space figures only
   * count synced blocks: without it `info` right after a write reads the old numbers.
   */
  async tree(settle: boolean): Promise<ZfsTree> {
    if (settle) await this.zfs(['set', `diskless:settled=${process.pid}.${++this.settleCounter}`, this.root], `settle pool ${this.pool}`);
    const props = [...TREE_PROPS, ...(this.features.writtenProperty ? ['written'] : []), ...(this.features.guidProperty ? ['guid'] : [])];
    const out = await this.zfs(['get', '-Hp', '-r', '-d', '2', '-o', 'name,property,value', props.join(','), this.root], `list the volumes of ${this.root}`);
    return decodeZfsTree(this.root, out);
  }

  /** `zfs destroy`, retried a moment while zfs-fuse says busy right after the last file closed. */
  destroy(target: string, flags: string[], what: string, context: Record<string, unknown>): Promise<void> {
    return whileBusy(() => this.zfs(['destroy', ...flags, target], what, context));
  }

  /** Unmounts and mounts `ds` again; the mount is retried while zfs-fuse still says busy from the unmount. */
  async remount(ds: string, name: string): Promise<void> {
    await this.zfs(['unmount', ds], `remount volume ${name}`, { volume: name });
    await whileBusy(() => this.zfs(['mount', ds], `remount volume ${name}`, { volume: name }));
  }

  /** The mounted directory of a file-backed dataset (mounting it when zfs has not). */
  async mountpointOf(d: ZfsDataset): Promise<string> {
    const mp = stringProp(d.props, 'mountpoint');
    if (mp === undefined || !mp.startsWith('/')) {
      throw new DisklessError('STORE_UNSUPPORTED', `cannot use volume ${d.name}: dataset ${d.dataset} has mountpoint ${String(mp)}`, { volume: d.name, dataset: d.dataset, mountpoint: mp });
    }
    if (d.props.get('mounted') !== 'yes') await this.zfs(['mount', d.dataset], `mount volume ${d.name}`, { volume: d.name });
    return mp;
  }

  /** The zvol's device node, or `<mountpoint>/volume.img` of dataset `d` (volume `name`'s, read from the tree when not given). */
  async imagePath(name: string, d?: ZfsDataset): Promise<string> {
    if (this.features.zvols) return `/dev/zvol/${d?.dataset ?? this.ds(name)}`;
    return join(await this.mountpointOf(d ?? volumeRow(await this.tree(false), name)), IMAGE_FILE);
  }

  /** Runs file I/O on volume `name`: ENOSPC/EDQUOT become STORE_NO_SPACE, other errors STORE_IO. */
  async fsCall<T>(op: string, name: string, fn: () => Promise<T>): Promise<T> {
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

/** STORE_UNSUPPORTED for an operation this pool or platform cannot do. */
export function zfsUnsupported(op: string, volume: string, why: string): DisklessError {
  return new DisklessError('STORE_UNSUPPORTED', `cannot ${op} volume ${volume}: ${why}`, { driver: 'zfs', operation: op, volume });
}

/** Runs `fn`, again after BUSY_RETRY_MS while it fails with STORE_BUSY, at most BUSY_RETRIES times more. */
async function whileBusy(fn: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fn();
      return;
    } catch (err) {
      if (!isDisklessError(err, 'STORE_BUSY') || attempt >= BUSY_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, BUSY_RETRY_MS));
    }
  }
}

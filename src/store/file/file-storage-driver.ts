import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DisklessError, isDisklessError } from '../../errors/index.js';
import type { BlockDevice } from '../block-device.js';
import type { CreateVolumeOptions, OpenVolumeOptions, ScrubReport, SnapshotInfo, StorageDriver, StorageDriverCapabilities, VolumeInfo, VolumeOrigin } from '../storage-driver.js';
import { assertVolumeName } from '../volume-name.js';
import { copySparse, resolveCreate } from '../create-options.js';
import { FileBlockDevice, type WarnLog } from './file-block-device.js';
import { blockAllocation } from './block-allocation.js';

/** Options of `new FileStorageDriver(...)`. */
export interface FileStorageDriverOptions {
  /** The server's data directory (config `server.dataDir`); volumes live in `<dataDir>/volumes`. */
  readonly dataDir: string;
  /** Where an opened volume says why unmap is off (a file system that cannot punch holes). */
  readonly log?: WarnLog;
}

/** Version of the metadata sidecar format (docs: `<name>.json` beside `<name>.img`). */
export const FILE_VOLUME_FORMAT_VERSION = 1;

/** The sidecar JSON, `<name>.json`. A volume exists exactly when its sidecar does. */
interface VolumeMetadata {
  readonly format: 'diskless-file-volume';
  readonly version: number;
  readonly name: string;
  readonly size: number;
  readonly blockSize: number;
  readonly createdAt: string;
  readonly origin: VolumeOrigin;
}

/**
 * The first storage driver: each volume is a sparse file `<dataDir>/volumes/<name>.img` plus
 * a small JSON sidecar `<name>.json`. Supports create (empty or imported from a raw image),
 * list, exists, info, open, destroy, and unmap (thin provisioning: holes punched in the
 * image, `FileBlockDevice`). Does NOT support snapshots, clones, rollback, send/receive or
 * scrub: those throw STORE_UNSUPPORTED and `capabilities` says so; the storage-engine issue
 * brings a driver that does. `capabilities.unmap` says the native hole-punching code is
 * there; each opened device's `capabilities.unmap` says whether its file system takes it.
 *
 * Crash safety: create builds the image and sidecar under hidden temporary names, syncs
 * them, renames the image then the sidecar (the commit point) and syncs the directory;
 * destroy removes the sidecar first. Leftover temporaries are never listed.
 */
export class FileStorageDriver implements StorageDriver {
  readonly name = 'file';
  readonly capabilities: StorageDriverCapabilities = {
    snapshots: false,
    clones: false,
    rollback: false,
    promote: false,
    holds: false,
    sendReceive: false,
    resumableReceive: false,
    scrub: false,
    unmap: blockAllocation() !== undefined,
  };
  /** `<dataDir>/volumes`. */
  readonly directory: string;
  private readonly log: WarnLog | undefined;

  constructor(options: FileStorageDriverOptions) {
    this.directory = join(options.dataDir, 'volumes');
    this.log = options.log;
  }

  async create(name: string, options: CreateVolumeOptions): Promise<VolumeInfo> {
    const { blockSize, size } = await resolveCreate(name, options);
    if (await this.exists(name)) throw new DisklessError('STORE_EXISTS', `cannot create volume ${name}: it already exists`, { volume: name });
    await this.fsCall('create', name, () => mkdir(this.directory, { recursive: true }));

    const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmpImg = join(this.directory, `.${name}.img.${tag}`);
    const tmpMeta = join(this.directory, `.${name}.json.${tag}`);
    const meta: VolumeMetadata = {
      format: 'diskless-file-volume',
      version: FILE_VOLUME_FORMAT_VERSION,
      name,
      size,
      blockSize,
      createdAt: new Date().toISOString(),
      origin: options.from !== undefined ? { kind: 'import', path: options.from } : { kind: 'empty' },
    };
    try {
      await this.fsCall('create', name, async () => {
        const fh = await open(tmpImg, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, 0o600);
        try {
          if (options.from !== undefined) await copySparse(options.from, fh);
          await fh.truncate(size);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        await writeFile(tmpMeta, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600, flush: true });
        await rename(tmpImg, this.imagePath(name));
        await rename(tmpMeta, this.metaPath(name));
        await syncDirectory(this.directory);
      });
    } catch (err) {
      await unlink(tmpImg).catch(() => undefined);
      await unlink(tmpMeta).catch(() => undefined);
      throw err;
    }
    return this.info(name);
  }

  async list(): Promise<VolumeInfo[]> {
    let entries: string[];
    try {
      entries = await readdir(this.directory);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw this.ioError('list', '*', err);
    }
    const names = entries
      .filter((e) => e.endsWith('.json') && !e.startsWith('.'))
      .map((e) => e.slice(0, -'.json'.length))
      .sort();
    const out: VolumeInfo[] = [];
    for (const n of names) {
      try {
        out.push(await this.info(n));
      } catch (err) {
        // A sidecar removed between readdir and read (a concurrent destroy) is simply gone.
        if (!isDisklessError(err, 'STORE_NOT_FOUND') && !isDisklessError(err, 'STORE_INVALID_NAME')) throw err;
      }
    }
    return out;
  }

  async exists(name: string): Promise<boolean> {
    assertVolumeName(name);
    try {
      await stat(this.metaPath(name));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw this.ioError('stat', name, err);
    }
  }

  async info(name: string): Promise<VolumeInfo> {
    const meta = await this.readMeta(name);
    const st = await this.fsCall('stat', name, () => stat(this.imagePath(name)));
    // No snapshots or clones: everything allocated is the volume's own and was written since "the latest snapshot".
    const allocated = st.blocks * 512;
    return { name, size: meta.size, blockSize: meta.blockSize, used: allocated, referenced: allocated, written: allocated, createdAt: meta.createdAt, origin: meta.origin };
  }

  async open(name: string, options: OpenVolumeOptions & { readonly snapshot?: string } = {}): Promise<BlockDevice> {
    const meta = await this.readMeta(name);
    if (options.snapshot !== undefined) throw this.unsupported('open a snapshot of', name);
    const readOnly = options.readOnly ?? false;
    const fh = await this.fsCall('open', name, () => open(this.imagePath(name), readOnly ? 'r' : 'r+'));
    return new FileBlockDevice(fh, meta.size, meta.blockSize, readOnly, name, this.log ? { log: this.log } : {});
  }

  async destroy(name: string, _options?: { readonly recursive?: boolean }): Promise<void> {
    await this.readMeta(name);
    await this.fsCall('destroy', name, async () => {
      await unlink(this.metaPath(name));
      await unlink(this.imagePath(name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await syncDirectory(this.directory);
    });
  }

  async listSnapshots(volume?: string): Promise<SnapshotInfo[]> {
    if (volume !== undefined) await this.readMeta(volume); // bad name or missing volume: rejected, as for every call
    return []; // the file driver cannot make snapshots, so there are none to list
  }

  snapshot(volume: string, _snapshot: string): Promise<SnapshotInfo> {
    return Promise.reject(this.unsupported('snapshot', volume));
  }

  destroySnapshot(volume: string, _snapshot: string): Promise<void> {
    return Promise.reject(this.unsupported('destroy a snapshot of', volume));
  }

  clone(volume: string, _snapshot: string, _name: string): Promise<VolumeInfo> {
    return Promise.reject(this.unsupported('clone', volume));
  }

  rollback(volume: string, _snapshot: string): Promise<void> {
    return Promise.reject(this.unsupported('rollback', volume));
  }

  promote(volume: string): Promise<void> {
    return Promise.reject(this.unsupported('promote', volume));
  }

  hold(volume: string, _snapshot: string, _tag: string): Promise<void> {
    return Promise.reject(this.unsupported('hold a snapshot of', volume));
  }

  release(volume: string, _snapshot: string, _tag: string): Promise<void> {
    return Promise.reject(this.unsupported('release a snapshot of', volume));
  }

  send(volume: string, _snapshot: string): AsyncIterable<Buffer> {
    const err = this.unsupported('send', volume);
    return {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
    };
  }

  receive(name: string, _stream: AsyncIterable<Buffer>): Promise<SnapshotInfo> {
    return Promise.reject(this.unsupported('receive', name));
  }

  receiveResumeToken(name: string): Promise<string | undefined> {
    return Promise.reject(this.unsupported('resume a receive into', name));
  }

  abortReceive(name: string): Promise<void> {
    return Promise.reject(this.unsupported('abort a receive into', name));
  }

  scrub(volume?: string): Promise<ScrubReport> {
    return Promise.reject(this.unsupported('scrub', volume ?? 'pool'));
  }

  close(): Promise<void> {
    return Promise.resolve(); // nothing held between calls: every call opens and closes its own files
  }

  /** `<dataDir>/volumes/<name>.img`. */
  imagePath(name: string): string {
    assertVolumeName(name);
    return join(this.directory, `${name}.img`);
  }

  private metaPath(name: string): string {
    assertVolumeName(name);
    return join(this.directory, `${name}.json`);
  }

  private async readMeta(name: string): Promise<VolumeMetadata> {
    assertVolumeName(name);
    let text: string;
    try {
      text = await readFile(this.metaPath(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DisklessError('STORE_NOT_FOUND', `cannot find volume ${name}`, { volume: name });
      throw this.ioError('read metadata of', name, err);
    }
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch (err) {
      throw new DisklessError('STORE_BAD_METADATA', `cannot read metadata of volume ${name}: not JSON`, { volume: name }, { cause: err });
    }
    const v = m as Partial<VolumeMetadata>;
    if (
      typeof m !== 'object' || m === null || v.format !== 'diskless-file-volume' || v.version !== FILE_VOLUME_FORMAT_VERSION || v.name !== name ||
      !Number.isSafeInteger(v.size) || (v.blockSize !== 512 && v.blockSize !== 4096) || (v.size as number) % v.blockSize !== 0 || typeof v.createdAt !== 'string' || typeof v.origin !== 'object'
    ) {
      throw new DisklessError('STORE_BAD_METADATA', `cannot read metadata of volume ${name}: unexpected shape or version ${String(v.version)}`, { volume: name, version: v.version, allowedVersions: [FILE_VOLUME_FORMAT_VERSION] });
    }
    return v as VolumeMetadata;
  }

  private unsupported(operation: string, volume: string): DisklessError {
    return new DisklessError('STORE_UNSUPPORTED', `cannot ${operation} volume ${volume}: the file driver has no ${operation}`, { driver: this.name, operation, volume });
  }

  private ioError(op: string, name: string, err: unknown): DisklessError {
    return new DisklessError('STORE_IO', `cannot ${op} volume ${name}: ${(err as Error).message}`, { volume: name, operation: op, errno: (err as NodeJS.ErrnoException).code }, { cause: err });
  }

  private async fsCall<T>(op: string, name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DisklessError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && op !== 'create') throw new DisklessError('STORE_NOT_FOUND', `cannot ${op} volume ${name}: its image file is missing`, { volume: name });
      throw this.ioError(op, name, err);
    }
  }
}

/** fsync on the directory so renames and unlinks survive a crash. */
async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb';
import { DisklessError } from '../../errors/index.js';
import { ExtentFiles, type ExtentIo } from './extent-files.js';
import { MAX_EXTENT } from './extent-reader.js';
import { PoolLock } from './pool-lock.js';
import { Layer, POOL_FORMAT, POOL_FORMAT_VERSION, type LayerRecord, type PoolRecord, type VolumeRecord } from './pool-records.js';

/** Options of `EmbeddedPool.open` (and `EmbeddedStorageDriver.open`). */
export interface EmbeddedPoolOptions {
  /** Pool directory: metadata (`meta/`, LMDB) and the data file `extents.dat`. Created if missing. */
  readonly pool: string;
  /** Mirror directory (a second disk): a second copy of every extent, healed from and healing the first. */
  readonly mirror?: string;
  /** Most bytes of extent data the pool may hold (default: until the file system is full). */
  readonly capacity?: number;
  /** Extent size for a NEW pool (an existing pool keeps its own): power of two, 4 KiB to 128 KiB. */
  readonly extentSize?: number;
  /** Background commit interval for writes nobody flushed, like a ZFS txg timeout (default 5000 ms). */
  readonly commitIntervalMs?: number;
  /** Test seam: wraps the real data files (the power-loss test records which writes were synced). */
  readonly wrapFiles?: (files: ExtentIo) => ExtentIo;
}

/** Default extent size (measured: docs/store-format.md "Choosing the extent size"). */
export const DEFAULT_EXTENT_SIZE = 64 * 1024;
const MIN_EXTENT = 4096;

/** What an open pool directory consists of (EmbeddedPool takes these over). */
export interface PoolStorage {
  readonly dir: string;
  readonly record: PoolRecord;
  readonly env: RootDatabase;
  /** Pool, volume and layer records (msgpack). */
  readonly meta: Database;
  /** Extent entries: 8-byte keys (layer, index), binary values (extent-entry.ts). */
  readonly extents: Database<Buffer, Buffer>;
  /** Free slots below nextSlot: 4-byte keys. */
  readonly freeDb: Database<Buffer, Buffer>;
  readonly files: ExtentIo;
  readonly lock: PoolLock;
}

/**
 * Opens a pool directory (creating it, and a new pool record, when empty): checks the
 * options, takes the pool lock, opens the LMDB tables with durable commits (overlappingSync
 * off), checks the pool record's format and the mirror's identity, opens the data files.
 * Everything opened is closed again when a later step fails.
 */
export async function openPoolStorage(options: EmbeddedPoolOptions): Promise<PoolStorage> {
  const dir = options.pool;
  if (options.capacity !== undefined && (!Number.isSafeInteger(options.capacity) || options.capacity <= 0)) {
    throw new DisklessError('STORE_INVALID_SIZE', `cannot open pool ${dir}: capacity ${String(options.capacity)} is not a positive byte count`, { field: 'capacity', value: options.capacity, allowed: 'a positive integer' });
  }
  const es = options.extentSize;
  if (es !== undefined && (!Number.isInteger(es) || es < MIN_EXTENT || es > MAX_EXTENT || (es & (es - 1)) !== 0)) {
    throw new DisklessError('STORE_INVALID_SIZE', `cannot open pool ${dir}: extent size ${String(es)} is not a power of two from ${MIN_EXTENT} to ${MAX_EXTENT}`, { field: 'extentSize', value: es, allowed: [4096, 8192, 16384, 32768, 65536, 131072] });
  }
  try {
    await mkdir(dir, { recursive: true });
    if (options.mirror !== undefined) await mkdir(options.mirror, { recursive: true });
  } catch (err) {
    throw new DisklessError('STORE_IO', `cannot create pool directory ${dir}: ${(err as Error).message}`, { pool: dir, errno: (err as NodeJS.ErrnoException).code }, { cause: err });
  }
  const lock = await PoolLock.acquire(dir);
  let env: RootDatabase | undefined;
  let files: ExtentIo | undefined;
  try {
    env = openLmdb({ path: join(dir, 'meta'), maxDbs: 4, overlappingSync: false, noSync: false });
    const meta = env.openDB({ name: 'meta' });
    const extents = env.openDB<Buffer, Buffer>({ name: 'extents', keyEncoding: 'binary', encoding: 'binary' });
    const freeDb = env.openDB<Buffer, Buffer>({ name: 'free', keyEncoding: 'binary', encoding: 'binary' });
    let record = meta.get('pool') as PoolRecord | undefined;
    if (record === undefined) {
      record = {
        format: POOL_FORMAT,
        version: POOL_FORMAT_VERSION,
        guid: randomBytes(8).toString('hex'),
        extentSize: es ?? DEFAULT_EXTENT_SIZE,
        createdAt: new Date().toISOString(),
        mirror: options.mirror !== undefined,
        nextSlot: 0,
        txg: 1,
        nextLayerId: 1,
      };
      if (options.mirror !== undefined) await writeMirrorId(options.mirror, record.guid);
      await env.transaction(() => meta.put('pool', record));
    } else {
      checkPoolRecord(dir, record);
      if (es !== undefined && es !== record.extentSize) {
        throw new DisklessError('STORE_INVALID_SIZE', `cannot open pool ${dir} with extent size ${es}: the pool was created with ${record.extentSize} and keeps it`, { field: 'extentSize', value: es, allowed: [record.extentSize] });
      }
      if (record.mirror !== (options.mirror !== undefined)) {
        throw new DisklessError('STORE_BAD_METADATA', record.mirror ? `cannot open pool ${dir} without its mirror directory: it was created with one (give --mirror)` : `cannot open pool ${dir} with a mirror: it was created without one`, { pool: dir, mirror: options.mirror ?? null });
      }
      if (options.mirror !== undefined) await checkMirrorId(options.mirror, record.guid);
    }
    files = await ExtentFiles.open(dir, options.mirror);
    if (options.wrapFiles) files = options.wrapFiles(files);
    return { dir, record: { ...record }, env, meta, extents, freeDb, files, lock };
  } catch (err) {
    await files?.close();
    await env?.close().catch(() => undefined);
    await lock.release();
    throw err;
  }
}

function checkPoolRecord(dir: string, r: PoolRecord): void {
  if (typeof r !== 'object' || r === null || r.format !== POOL_FORMAT || r.version !== POOL_FORMAT_VERSION || !Number.isInteger(r.extentSize) || !Number.isInteger(r.nextSlot)) {
    throw new DisklessError('STORE_BAD_METADATA', `cannot open pool ${dir}: not a ${POOL_FORMAT} version ${POOL_FORMAT_VERSION} pool`, { pool: dir, format: (r as Partial<PoolRecord>)?.format, version: (r as Partial<PoolRecord>)?.version, allowedVersions: [POOL_FORMAT_VERSION] });
  }
}

async function writeMirrorId(mirror: string, guid: string): Promise<void> {
  await writeFile(join(mirror, 'POOL'), `${guid}\n`, { mode: 0o600, flush: true });
}

async function checkMirrorId(mirror: string, guid: string): Promise<void> {
  const got = (await readFile(join(mirror, 'POOL'), 'utf8').catch(() => '')).trim();
  if (got !== guid) {
    throw new DisklessError('STORE_BAD_METADATA', `cannot use ${mirror} as the mirror: it belongs to pool ${got || '(none)'}, not ${guid}`, { mirror, expected: guid, found: got || null });
  }
}


/** Every layer record (entries not loaded yet), volume record and free slot of an opened pool. */
export function readPoolRecords(dir: string, meta: Database, freeDb: Database<Buffer, Buffer>): { layers: Layer[]; volumes: VolumeRecord[]; free: number[] } {
  const layers: Layer[] = [];
  const ids = new Set<number>();
  for (const { key, value } of meta.getRange({ start: 'layer:', end: 'layer;' })) {
    const r = value as LayerRecord;
    if (typeof r !== 'object' || r === null || typeof r.id !== 'number') throw new DisklessError('STORE_BAD_METADATA', `cannot read pool ${dir}: record ${String(key)} is not a layer`, { key });
    layers.push(new Layer({ ...r, holds: [...r.holds] }, undefined));
    ids.add(r.id);
  }
  const volumes: VolumeRecord[] = [];
  for (const { key, value } of meta.getRange({ start: 'volume:', end: 'volume;' })) {
    const v = value as VolumeRecord;
    if (typeof v !== 'object' || v === null || !ids.has(v.head)) throw new DisklessError('STORE_BAD_METADATA', `cannot read pool ${dir}: record ${String(key)} is not a volume with a head layer`, { key });
    volumes.push({ ...v });
  }
  const free: number[] = [];
  for (const key of freeDb.getKeys()) free.push(Buffer.from(key).readUInt32BE(0));
  return { layers, volumes, free };
}

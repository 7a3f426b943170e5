import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb';
import { DisklessError } from '../../errors/index.js';
import { blockChecksums, CHECKSUM_BLOCK, firstBadBlock } from './block-checksums.js';
import { ExtentFiles, type ExtentIo } from './extent-files.js';
import { blockRangeMask, decodeExtentEntry, encodeExtentEntry, extentKey, ZERO_SLOT, type ExtentEntry } from './extent-entry.js';
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
const MAX_EXTENT = 128 * 1024;

/** An entry and the layer that holds it. */
export interface Hit {
  readonly layer: Layer;
  readonly entry: ExtentEntry;
}

type MetaOp = { readonly db: 'meta'; readonly key: string; readonly value: unknown } | { readonly db: 'extents' | 'free'; readonly key: Buffer; readonly value: Buffer | undefined };

/** Counts of one scrub pass. */
export interface ScrubCounts {
  bytesChecked: number;
  errors: number;
  repaired: number;
  unrecoverable: number;
}

/**
 * The embedded copy-on-write engine: a pool directory holding the data file (fixed-size
 * slots, one extent each) and an LMDB environment with the metadata (pool, volume and layer
 * records, extent entries, the free list). Writes land in the data file first and in memory;
 * a commit (flush, FUA, any metadata change, or every `commitIntervalMs`) closes the open
 * transaction group: it waits for writes in flight, fdatasyncs the data file(s), then writes
 * every changed record in one LMDB transaction (fdatasync'd). A crash at any point leaves the
 * last committed group: slots written since are unreferenced, and slots freed since are
 * still allocated, because a freed slot is reused only after the commit that stopped
 * referencing it. Every 4 KiB block has a CRC32C, checked on every read; a bad block is read
 * from the mirror and rewritten, and with no good copy the read fails with STORE_CORRUPT.
 *
 * Volume-level operations (snapshot, clone, ...) live in EmbeddedStorageDriver; they change
 * the in-memory records inside `commit(mutation)`, which runs the mutation with no write in
 * flight and makes it durable before resolving.
 */
export class EmbeddedPool {
  readonly extentSize: number;
  readonly blocksPerExtent: number;
  readonly layers = new Map<number, Layer>();
  readonly volumes = new Map<string, VolumeRecord>();
  /** Open devices per volume (destroy, rollback and promote refuse while any is open). */
  readonly openCount = new Map<string, number>();

  private readonly maxSlots: number;
  private free: number[] = [];
  private allocatedFromFree = new Set<number>();
  private pendingFree = new Set<number>();
  private readonly dirtyEntries = new Map<number, Set<number>>();
  private readonly dirtyLayers = new Set<number>();
  private readonly dirtyVolumes = new Set<string>();
  private readonly removedLayers = new Set<number>();
  private inflight = 0;
  private barrier: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private readonly locks = new Map<number, Promise<void>>();
  private persistChain: Promise<void> = Promise.resolve();
  private failed: DisklessError | undefined;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private readonly scratch = new Uint32Array(MAX_EXTENT / CHECKSUM_BLOCK);
  /** Covering blocks of an unaligned read on the synchronous path (never held across an await). */
  private readonly cover = Buffer.allocUnsafe(MAX_EXTENT);

  private constructor(
    readonly dir: string,
    readonly record: PoolRecord,
    private readonly env: RootDatabase,
    private readonly meta: Database,
    private readonly extents: Database<Buffer, Buffer>,
    private readonly freeDb: Database<Buffer, Buffer>,
    readonly files: ExtentIo,
    private readonly lock: PoolLock,
    capacity: number | undefined,
    commitIntervalMs: number,
  ) {
    this.extentSize = record.extentSize;
    this.blocksPerExtent = record.extentSize / CHECKSUM_BLOCK;
    this.maxSlots = capacity === undefined ? Number.MAX_SAFE_INTEGER : Math.floor(capacity / record.extentSize);
    this.timer = setInterval(() => {
      if (this.hasDirty()) this.sync().catch(() => undefined); // a failure is kept in `failed` and reported to the next caller
    }, commitIntervalMs);
    this.timer.unref();
  }

  static async open(options: EmbeddedPoolOptions): Promise<EmbeddedPool> {
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
      const pool = new EmbeddedPool(dir, { ...record }, env, meta, extents, freeDb, files, lock, options.capacity, options.commitIntervalMs ?? 5000);
      pool.load();
      return pool;
    } catch (err) {
      await files?.close();
      await env?.close().catch(() => undefined);
      await lock.release();
      throw err;
    }
  }

  private load(): void {
    for (const { key, value } of this.meta.getRange({ start: 'layer:', end: 'layer;' })) {
      const r = value as LayerRecord;
      if (typeof r !== 'object' || r === null || typeof r.id !== 'number') throw new DisklessError('STORE_BAD_METADATA', `cannot read pool ${this.dir}: record ${String(key)} is not a layer`, { key });
      this.layers.set(r.id, new Layer({ ...r, holds: [...r.holds] }, undefined));
    }
    for (const { key, value } of this.meta.getRange({ start: 'volume:', end: 'volume;' })) {
      const v = value as VolumeRecord;
      if (typeof v !== 'object' || v === null || !this.layers.has(v.head)) throw new DisklessError('STORE_BAD_METADATA', `cannot read pool ${this.dir}: record ${String(key)} is not a volume with a head layer`, { key });
      this.volumes.set(v.name, { ...v });
    }
    for (const key of this.freeDb.getKeys()) this.free.push(Buffer.from(key).readUInt32BE(0));
  }

  // ---- layers and lookups -------------------------------------------------------------

  layer(id: number): Layer {
    const l = this.layers.get(id);
    if (!l) throw new DisklessError('STORE_BAD_METADATA', `pool ${this.dir}: layer ${id} is missing`, { layer: id });
    return l;
  }

  /** The layer's entries, loaded from the metadata on first use. */
  entriesOf(layer: Layer): Map<number, ExtentEntry> {
    if (layer.entries) return layer.entries;
    const m = new Map<number, ExtentEntry>();
    for (const { key, value } of this.extents.getRange({ start: extentKey(layer.id, 0), end: extentKey(layer.id + 1, 0) })) {
      m.set(Buffer.from(key).readUInt32BE(4), decodeExtentEntry(value, this.blocksPerExtent));
    }
    layer.entries = m;
    return m;
  }

  /** The entry visible at `index` from layer `id` down, or undefined (reads zeros). */
  lookup(id: number, index: number): Hit | undefined {
    for (let cur = id; cur !== 0; ) {
      const layer = this.layer(cur);
      const e = this.entriesOf(layer).get(index);
      if (e) return { layer, entry: e };
      cur = layer.record.parent;
    }
    return undefined;
  }

  /** Layer ids from `id` down to the bottom. */
  chain(id: number): Layer[] {
    const out: Layer[] = [];
    for (let cur = id; cur !== 0; cur = this.layer(cur).record.parent) out.push(this.layer(cur));
    return out;
  }

  newLayer(parent: number, owner: string, referencedExtents: number): Layer {
    const id = this.record.nextLayerId++;
    const layer = new Layer(
      { id, parent, owner, snapshot: null, createdAt: new Date().toISOString(), guid: randomBytes(8).toString('hex'), dataExtents: 0, shadowed: 0, referencedExtents, holds: [] },
      new Map(),
    );
    this.layers.set(id, layer);
    this.dirtyLayers.add(id);
    return layer;
  }

  /** Marks a layer record changed (for the next commit). */
  touchLayer(layer: Layer): void {
    this.dirtyLayers.add(layer.id);
  }

  touchVolume(name: string): void {
    this.dirtyVolumes.add(name);
  }

  /** Removes a layer and frees its data slots at the next commit. */
  dropLayer(layer: Layer): void {
    for (const [index, e] of this.entriesOf(layer)) {
      if (e.slot !== ZERO_SLOT) this.pendingFree.add(e.slot);
      this.markDirty(layer.id, index);
    }
    layer.removed = true;
    this.layers.delete(layer.id);
    this.dirtyLayers.delete(layer.id);
    this.removedLayers.add(layer.id);
  }

  /** Moves an entry between layers (snapshot destroy merges a layer into the one above). */
  setEntry(layer: Layer, index: number, entry: ExtentEntry | undefined): void {
    if (entry) this.entriesOf(layer).set(index, entry);
    else this.entriesOf(layer).delete(index);
    this.markDirty(layer.id, index);
  }

  /** Frees a slot at the next commit. */
  releaseSlot(slot: number): void {
    this.pendingFree.add(slot);
  }

  private markDirty(layer: number, index: number): void {
    let s = this.dirtyEntries.get(layer);
    if (!s) this.dirtyEntries.set(layer, (s = new Set()));
    s.add(index);
  }

  private hasDirty(): boolean {
    return this.dirtyEntries.size > 0 || this.dirtyLayers.size > 0 || this.dirtyVolumes.size > 0 || this.removedLayers.size > 0 || this.pendingFree.size > 0 || this.allocatedFromFree.size > 0;
  }

  // ---- space -------------------------------------------------------------------------

  /** Bytes of extent data in use (allocated slots not on the free lists). */
  get allocatedBytes(): number {
    return (this.record.nextSlot - this.free.length - this.pendingFree.size) * this.extentSize;
  }

  private allocate(): number {
    const s = this.free.pop();
    if (s !== undefined) {
      this.allocatedFromFree.add(s);
      return s;
    }
    if (this.record.nextSlot >= this.maxSlots) {
      throw new DisklessError('STORE_NO_SPACE', `pool ${this.dir} is full: ${this.maxSlots} extents of ${this.extentSize} bytes are in use (capacity)`, { pool: this.dir, capacity: this.maxSlots * this.extentSize });
    }
    return this.record.nextSlot++;
  }

  /** A slot allocated for a write that failed goes back at once (nothing references it). */
  private unallocate(slot: number): void {
    this.pendingFree.add(slot);
  }

  /** When only slots freed in the open group are left, commit so they can be reused. */
  private async ensureSpace(): Promise<void> {
    if (this.free.length === 0 && this.record.nextSlot >= this.maxSlots && this.pendingFree.size > 0) await this.sync();
  }

  // ---- write gate, extent locks --------------------------------------------------------

  private async enterWrite(): Promise<void> {
    while (this.barrier) await this.barrier;
    this.inflight++;
  }

  private leaveWrite(): void {
    if (--this.inflight === 0 && this.drained) this.drained();
  }

  /** Runs `fn` with no write in flight and new writes held back. */
  private async exclusive<T>(fn: () => T): Promise<T> {
    while (this.barrier) await this.barrier;
    let release!: () => void;
    this.barrier = new Promise<void>((r) => (release = r));
    try {
      if (this.inflight > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      return fn();
    } finally {
      this.barrier = undefined;
      release();
    }
  }

  private async lockExtent(key: number): Promise<() => void> {
    while (this.locks.has(key)) await this.locks.get(key);
    let release!: () => void;
    this.locks.set(key, new Promise<void>((r) => (release = r)));
    return () => {
      this.locks.delete(key);
      release();
    };
  }

  // ---- commit ------------------------------------------------------------------------

  /** Volumes a receive is writing into right now (a second receive into one is refused). */
  readonly activeReceives = new Set<string>();

  /** The failure that stopped the pool, if one did. */
  get failedReason(): DisklessError | undefined {
    return this.failed;
  }

  /** Throws the failure that stopped the pool (a commit that could not be made durable). */
  checkHealthy(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new DisklessError('STORE_CLOSED', `pool ${this.dir} is closed`, { pool: this.dir });
  }

  /**
   * Closes the open transaction group and makes it durable: with `mutation`, that runs first
   * (synchronously, with no write in flight; it must validate before it changes anything).
   * Resolves when the data file(s) and the metadata are on disk.
   */
  async commit<T>(mutation?: () => T): Promise<T> {
    this.checkHealthy();
    const { result, ops, freed } = await this.exclusive(() => {
      this.checkHealthy();
      const result = mutation ? mutation() : (undefined as T);
      this.record.txg++;
      const { ops, freed } = this.capture();
      return { result, ops, freed };
    });
    if (ops.length === 0) {
      await this.persistChain;
      return result;
    }
    const run = this.persistChain.then(() => this.persist(ops, freed));
    this.persistChain = run.catch(() => undefined);
    await run;
    return result;
  }

  /** Makes every write that resolved before this call durable. */
  async sync(): Promise<void> {
    if (!this.hasDirty()) {
      this.checkHealthy();
      await this.persistChain;
      this.checkHealthy();
      return;
    }
    await this.commit();
  }

  private capture(): { ops: MetaOp[]; freed: number[] } {
    const ops: MetaOp[] = [];
    for (const [layerId, idxs] of this.dirtyEntries) {
      const layer = this.layers.get(layerId);
      for (const index of idxs) {
        const e = layer?.entries?.get(index);
        ops.push({ db: 'extents', key: extentKey(layerId, index), value: e ? encodeExtentEntry(e, this.blocksPerExtent) : undefined });
      }
    }
    for (const id of this.dirtyLayers) {
      const l = this.layers.get(id);
      if (l) ops.push({ db: 'meta', key: `layer:${id}`, value: { ...l.record, holds: [...l.record.holds] } });
    }
    for (const id of this.removedLayers) ops.push({ db: 'meta', key: `layer:${id}`, value: undefined });
    for (const name of this.dirtyVolumes) {
      const v = this.volumes.get(name);
      ops.push({ db: 'meta', key: `volume:${name}`, value: v ? structuredClone(v) : undefined });
    }
    const freeOps = new Map<number, boolean>();
    for (const s of this.allocatedFromFree) freeOps.set(s, false);
    for (const s of this.pendingFree) freeOps.set(s, true);
    for (const [s, isFree] of freeOps) ops.push({ db: 'free', key: slotKey(s), value: isFree ? EMPTY : undefined });
    if (ops.length > 0) ops.push({ db: 'meta', key: 'pool', value: { ...this.record } });
    const freed = [...this.pendingFree];
    this.dirtyEntries.clear();
    this.dirtyLayers.clear();
    this.dirtyVolumes.clear();
    this.removedLayers.clear();
    this.pendingFree = new Set();
    this.allocatedFromFree = new Set();
    return { ops, freed };
  }

  private async persist(ops: MetaOp[], freed: number[]): Promise<void> {
    this.checkHealthy();
    try {
      await this.files.datasync();
      await this.env.transaction(() => {
        for (const op of ops) {
          const db = op.db === 'meta' ? this.meta : op.db === 'extents' ? this.extents : this.freeDb;
          if (op.value === undefined) db.removeSync(op.key as never);
          else db.putSync(op.key as never, op.value as never);
        }
      });
    } catch (err) {
      // The in-memory state is ahead of the disk and cannot be trusted to match it: stop the
      // pool (like ZFS suspending it); reopening reads the last durable commit.
      this.failed = err instanceof DisklessError && err.code !== 'STORE_NO_SPACE' ? err : new DisklessError('STORE_IO', `pool ${this.dir}: a commit failed, the pool is stopped until reopened: ${(err as Error).message}`, { pool: this.dir }, { cause: err });
      throw this.failed;
    }
    for (const s of freed) this.free.push(s);
  }

  // ---- reads -------------------------------------------------------------------------

  /**
   * The fast path of a read: fills `target` on this thread when every extent is a hole or
   * data whose covering 4 KiB blocks are cached and whose checksums match. Returns false —
   * possibly after filling part of `target` — when the async path must do it (a cache miss,
   * a checksum to repair). Saves the promise chain per extent: about a
   * third of the per-command cost of a cached 4 KiB read.
   */
  readRangeSync(view: number, offset: number, target: Buffer): boolean {
    const files = this.files;
    if (!files.readCached || this.failed || this.closed) return false;
    const E = this.extentSize;
    const B = CHECKSUM_BLOCK;
    const end = offset + target.length;
    for (let pos = offset; pos < end; ) {
      const index = Math.floor(pos / E);
      const start = pos - index * E;
      const stop = Math.min(E, start + (end - pos));
      const t = pos - offset;
      const hit = this.lookup(view, index);
      if (!hit || hit.entry.slot === ZERO_SLOT) target.fill(0, t, t + (stop - start));
      else if (start % B === 0 && stop % B === 0) {
        const dst = target.subarray(t, t + (stop - start));
        if (!files.readCached(hit.entry.slot * E + start, dst)) return false;
        if (firstBadBlock(dst, hit.entry.sums!, start / B, this.scratch) >= 0) return false;
      } else {
        // Not 4 KiB-aligned (512-byte LBAs): read and verify the covering blocks, copy out the part asked for.
        const bFirst = Math.floor(start / B);
        const cover = this.cover.subarray(0, (Math.ceil(stop / B) - bFirst) * B);
        if (!files.readCached(hit.entry.slot * E + bFirst * B, cover)) return false;
        if (firstBadBlock(cover, hit.entry.sums!, bFirst, this.scratch) >= 0) return false;
        cover.copy(target, t, start - bFirst * B, stop - bFirst * B);
      }
      pos += stop - start;
    }
    return true;
  }

  /** Fills `target` with the bytes at `offset` of the view from layer `view()` down (re-evaluated per extent). */
  async readRange(view: () => number, offset: number, target: Buffer, volume: string): Promise<void> {
    this.checkHealthy();
    const E = this.extentSize;
    const end = offset + target.length;
    const jobs: Promise<void>[] = [];
    for (let pos = offset; pos < end; ) {
      const index = Math.floor(pos / E);
      const start = pos - index * E;
      const stop = Math.min(E, start + (end - pos));
      jobs.push(this.readExtent(view, index, start, stop, target, pos - offset, volume));
      pos += stop - start;
    }
    if (jobs.length === 1) return jobs[0];
    await settleAll(jobs);
  }

  private async readExtent(view: () => number, index: number, start: number, stop: number, target: Buffer, tOff: number, volume: string): Promise<void> {
    const B = CHECKSUM_BLOCK;
    const bFirst = Math.floor(start / B);
    const bEnd = Math.ceil(stop / B);
    const aligned = start % B === 0 && stop % B === 0;
    for (let attempt = 0; ; attempt++) {
      const hit = this.lookup(view(), index);
      if (!hit || hit.entry.slot === ZERO_SLOT) {
        target.fill(0, tOff, tOff + (stop - start));
        return;
      }
      const dst = aligned ? target.subarray(tOff, tOff + (stop - start)) : Buffer.allocUnsafe((bEnd - bFirst) * B);
      await this.files.read('primary', hit.entry.slot * this.extentSize + bFirst * B, dst);
      if (firstBadBlock(dst, hit.entry.sums!, bFirst, this.scratch) >= 0) {
        const done = await this.repair(hit, index, bFirst, dst, volume, attempt < 3);
        if (!done) continue; // the extent changed under the read: read it again
      }
      if (!aligned) dst.copy(target, tOff, start - bFirst * B, stop - bFirst * B);
      return;
    }
  }

  /**
   * A block failed its checksum: under the extent's lock, make sure the entry is still the
   * one read (else return false: the caller re-reads), re-read, and replace each bad block
   * from the mirror, rewriting the bad copy. No good copy: STORE_CORRUPT.
   */
  private async repair(hit: Hit, index: number, bFirst: number, dst: Buffer, volume: string, mayRetry: boolean): Promise<boolean> {
    const unlock = await this.lockExtent(lockKey(hit.layer.id, index));
    try {
      if (mayRetry && (hit.layer.removed || hit.layer.entries?.get(index) !== hit.entry)) return false;
      const B = CHECKSUM_BLOCK;
      const base = hit.entry.slot * this.extentSize;
      await this.files.read('primary', base + bFirst * B, dst);
      const one = Buffer.allocUnsafe(B);
      for (let i = 0; i < dst.length / B; i++) {
        const block = dst.subarray(i * B, (i + 1) * B);
        if (firstBadBlock(block, hit.entry.sums!, bFirst + i, this.scratch) < 0) continue;
        let healed = false;
        if (this.files.mirrored) {
          await this.files.read('mirror', base + (bFirst + i) * B, one);
          if (firstBadBlock(one, hit.entry.sums!, bFirst + i, this.scratch) < 0) {
            one.copy(block);
            await this.files.write(base + (bFirst + i) * B, one, 'primary');
            healed = true;
          }
        }
        if (!healed) {
          const offset = index * this.extentSize + (bFirst + i) * B;
          throw new DisklessError('STORE_CORRUPT', `volume ${volume}: the 4 KiB block at byte ${offset} failed its checksum${this.files.mirrored ? ' on both copies' : ' and the pool has no mirror'}`, {
            volume,
            offset,
            slot: hit.entry.slot,
            block: bFirst + i,
            mirrored: this.files.mirrored,
          });
        }
      }
      return true;
    } finally {
      unlock();
    }
  }

  /** Whole extent of `entry` into `extent`; returns the blocks with no good copy (their bytes are copied as they are). */
  private async readForCopy(entry: ExtentEntry, extent: Buffer): Promise<number[]> {
    await this.files.read('primary', entry.slot * this.extentSize, extent);
    const sums = blockChecksums(extent, new Uint32Array(this.blocksPerExtent));
    const bad: number[] = [];
    for (let b = 0; b < this.blocksPerExtent; b++) {
      if (sums[b] === entry.sums![b]) continue;
      const block = extent.subarray(b * CHECKSUM_BLOCK, (b + 1) * CHECKSUM_BLOCK);
      if (this.files.mirrored) {
        const one = Buffer.allocUnsafe(CHECKSUM_BLOCK);
        await this.files.read('mirror', entry.slot * this.extentSize + b * CHECKSUM_BLOCK, one);
        if (firstBadBlock(one, entry.sums!, b, this.scratch) < 0) {
          one.copy(block);
          continue;
        }
      }
      bad.push(b);
    }
    return bad;
  }

  // ---- writes ------------------------------------------------------------------------

  /**
   * Writes `bufs` (length bytes in total) at `offset` of volume `volume`'s head, or with
   * `layer` into that layer instead (a receive fills a layer that is not the head yet).
   */
  async writeRange(volume: string, offset: number, bufs: readonly Buffer[], length: number, layer?: Layer): Promise<void> {
    this.checkHealthy();
    const E = this.extentSize;
    const jobs: Promise<void>[] = [];
    let bi = 0;
    let bo = 0;
    for (let pos = offset; pos < offset + length; ) {
      const index = Math.floor(pos / E);
      const start = pos - index * E;
      const stop = Math.min(E, start + (offset + length - pos));
      const piece: Buffer[] = [];
      for (let need = stop - start; need > 0; ) {
        const b = bufs[bi]!;
        const take = Math.min(need, b.length - bo);
        piece.push(b.subarray(bo, bo + take));
        bo += take;
        need -= take;
        if (bo === b.length) {
          bi++;
          bo = 0;
        }
      }
      jobs.push(this.writeExtent(volume, layer, index, start, stop, piece));
      pos += stop - start;
    }
    if (jobs.length === 1) return jobs[0];
    await settleAll(jobs);
  }

  /** Zeros [offset, offset+length): whole extents become holes (freed), partial ones are written with zeros. */
  async zeroRange(volume: string, offset: number, length: number, layer?: Layer): Promise<void> {
    const E = this.extentSize;
    const jobs: Promise<void>[] = [];
    for (let pos = offset; pos < offset + length; ) {
      const index = Math.floor(pos / E);
      const start = pos - index * E;
      const stop = Math.min(E, start + (offset + length - pos));
      jobs.push(this.writeExtent(volume, layer, index, start, stop, [zeros(stop - start)]));
      pos += stop - start;
    }
    await settleAll(jobs);
  }

  private async writeExtent(volume: string, layer: Layer | undefined, index: number, start: number, stop: number, piece: Buffer[]): Promise<void> {
    await this.ensureSpace();
    await this.enterWrite();
    try {
      this.checkHealthy();
      const vol = this.volumes.get(volume);
      if (!vol || layer?.removed) throw new DisklessError('STORE_NOT_FOUND', `cannot write volume ${volume}: it was destroyed`, { volume });
      const head = layer ?? this.layer(vol.head);
      const unlock = await this.lockExtent(lockKey(head.id, index));
      try {
        await this.writeExtentLocked(head, index, start, stop, piece.length === 1 ? piece[0]! : Buffer.concat(piece));
      } finally {
        unlock();
      }
    } finally {
      this.leaveWrite();
    }
  }

  private async writeExtentLocked(head: Layer, index: number, start: number, stop: number, data: Buffer): Promise<void> {
    const E = this.extentSize;
    const B = CHECKSUM_BLOCK;
    const entries = this.entriesOf(head);
    const own = entries.get(index);
    const below = own ? undefined : head.record.parent !== 0 ? this.lookup(head.record.parent, index) : undefined;
    const old = own ?? below?.entry;
    const bFirst = Math.floor(start / B);
    const bEnd = Math.ceil(stop / B);
    const wmask = blockRangeMask(bFirst, bEnd);
    const full = start === 0 && stop === E;

    let next: ExtentEntry | undefined;
    if (full && isZero(data)) {
      // A hole: nothing to store unless data below must be hidden (a tombstone).
      const belowVisible = own ? this.visibleBelow(head, index) : below !== undefined && below.entry.slot !== ZERO_SLOT;
      next = belowVisible ? { slot: ZERO_SLOT, mask: ((own?.mask ?? 0) | wmask) >>> 0, sums: undefined, txg: this.record.txg } : undefined;
      if (own && own.slot !== ZERO_SLOT) this.pendingFree.add(own.slot);
      if (!own && !next) return;
    } else if (own && own.slot !== ZERO_SLOT && own.txg === this.record.txg) {
      // Allocated in the open group: no committed metadata points at the slot, so overwrite it.
      let blocks = data;
      if (start % B !== 0 || stop % B !== 0) {
        blocks = Buffer.allocUnsafe((bEnd - bFirst) * B);
        await this.files.read('primary', own.slot * E + bFirst * B, blocks);
        const bad = firstBadBlock(blocks, own.sums!, bFirst, this.scratch);
        if (bad >= 0) await this.repair({ layer: head, entry: own }, index, bFirst, blocks, head.record.owner, false);
        data.copy(blocks, start - bFirst * B);
      }
      await this.files.write(own.slot * E + bFirst * B, blocks);
      const sums = own.sums!.slice();
      blockChecksums(blocks, sums, bFirst);
      next = { slot: own.slot, mask: (own.mask | wmask) >>> 0, sums, txg: own.txg };
    } else {
      const slot = this.allocate();
      try {
        const sums = new Uint32Array(this.blocksPerExtent);
        let extent = data;
        let bad: number[] = [];
        if (!full) {
          extent = Buffer.allocUnsafe(E);
          if (old && old.slot !== ZERO_SLOT) bad = await this.readForCopy(old, extent);
          else extent.fill(0);
          data.copy(extent, start);
        }
        blockChecksums(extent, sums);
        for (const b of bad) {
          // No good copy of this old block: keep its old checksum so it stays detectably bad
          // (unless the write replaced the whole block).
          const replaced = b * B >= start && (b + 1) * B <= stop;
          if (!replaced) sums[b] = old!.sums![b]!;
        }
        await this.files.write(slot * E, extent);
        next = { slot, mask: ((own?.mask ?? 0) | wmask) >>> 0, sums, txg: this.record.txg };
      } catch (err) {
        this.unallocate(slot);
        throw err;
      }
      if (own && own.slot !== ZERO_SLOT) this.pendingFree.add(own.slot);
    }
    this.account(head, own, below, next);
    if (next) entries.set(index, next);
    else entries.delete(index);
    this.markDirty(head.id, index);
  }

  /** Whether a layer below `head` shows data at `index`. */
  private visibleBelow(head: Layer, index: number): boolean {
    const hit = head.record.parent !== 0 ? this.lookup(head.record.parent, index) : undefined;
    return hit !== undefined && hit.entry.slot !== ZERO_SLOT;
  }

  private account(head: Layer, own: ExtentEntry | undefined, below: Hit | undefined, next: ExtentEntry | undefined): void {
    const r = head.record;
    const before = own ?? below?.entry;
    const wasVisible = before !== undefined && before.slot !== ZERO_SLOT;
    const isVisible = next !== undefined && next.slot !== ZERO_SLOT;
    r.referencedExtents += (isVisible ? 1 : 0) - (wasVisible ? 1 : 0);
    r.dataExtents += (isVisible ? 1 : 0) - (own !== undefined && own.slot !== ZERO_SLOT ? 1 : 0);
    if (!own && next && below && below.layer.id === r.parent && below.layer.record.owner === r.owner && below.entry.slot !== ZERO_SLOT) {
      below.layer.record.shadowed++;
      this.dirtyLayers.add(below.layer.id);
    }
    this.dirtyLayers.add(r.id);
  }

  // ---- allocation status, scrub, diagnostics -------------------------------------------

  /** Whether each extent from `offset` has data (mapped) in the view, as runs of whole blocks. */
  mappedRuns(view: number, offset: number, length: number, maxRuns: number): { offset: number; length: number; mapped: boolean }[] {
    const E = this.extentSize;
    const out: { offset: number; length: number; mapped: boolean }[] = [];
    const end = offset + length;
    for (let pos = offset; pos < end; ) {
      const index = Math.floor(pos / E);
      const stop = Math.min(end, (index + 1) * E);
      const hit = this.lookup(view, index);
      const mapped = hit !== undefined && hit.entry.slot !== ZERO_SLOT;
      const last = out[out.length - 1];
      if (last && last.mapped === mapped) (last as { length: number }).length += stop - pos;
      else {
        if (out.length === maxRuns) break;
        out.push({ offset: pos, length: stop - pos, mapped });
      }
      pos = stop;
    }
    return out;
  }

  /** Checks every block of the given layers on every copy, rewriting bad copies from good ones. */
  async scrubLayers(layers: readonly Layer[], counts: ScrubCounts): Promise<void> {
    const E = this.extentSize;
    const B = CHECKSUM_BLOCK;
    const primary = Buffer.allocUnsafe(E);
    const mirror = Buffer.allocUnsafe(E);
    const sums = new Uint32Array(this.blocksPerExtent);
    const msums = new Uint32Array(this.blocksPerExtent);
    for (const layer of layers) {
      const list = [...this.entriesOf(layer)].filter(([, e]) => e.slot !== ZERO_SLOT);
      for (const [index, entry] of list) {
        const unlock = await this.lockExtent(lockKey(layer.id, index));
        try {
          if (layer.removed || layer.entries?.get(index) !== entry) continue; // rewritten meanwhile: the new copy was checksummed as written
          const base = entry.slot * E;
          await this.files.read('primary', base, primary);
          blockChecksums(primary, sums);
          counts.bytesChecked += E;
          if (this.files.mirrored) {
            await this.files.read('mirror', base, mirror);
            blockChecksums(mirror, msums);
            counts.bytesChecked += E;
          }
          for (let b = 0; b < this.blocksPerExtent; b++) {
            const want = entry.sums![b];
            const mirrored = this.files.mirrored;
            const pOk = sums[b] === want;
            const mOk = mirrored && msums[b] === want;
            if (pOk && (mOk || !mirrored)) continue;
            counts.errors += (pOk ? 0 : 1) + (mirrored && !mOk ? 1 : 0);
            if (pOk || mOk) {
              const good = (pOk ? primary : mirror).subarray(b * B, (b + 1) * B);
              await this.files.write(base + b * B, good, pOk ? 'mirror' : 'primary');
              counts.repaired++;
            } else counts.unrecoverable++;
          }
        } finally {
          unlock();
        }
      }
    }
  }

  /** Where the 4 KiB block holding byte `offset` of the view lives on each copy (tests inject corruption there). */
  locate(view: number, offset: number): { path: string; position: number; length: number }[] {
    const E = this.extentSize;
    const index = Math.floor(offset / E);
    const hit = this.lookup(view, index);
    if (!hit || hit.entry.slot === ZERO_SLOT) return [];
    const position = hit.entry.slot * E + Math.floor((offset - index * E) / CHECKSUM_BLOCK) * CHECKSUM_BLOCK;
    const out = [{ path: this.files.primaryPath, position, length: CHECKSUM_BLOCK }];
    if (this.files.mirrorPath !== undefined) out.push({ path: this.files.mirrorPath, position, length: CHECKSUM_BLOCK });
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    let err: unknown;
    try {
      if (!this.failed) await this.sync();
    } catch (e) {
      err = e;
    }
    this.closed = true;
    await this.files.close();
    await this.env.close().catch(() => undefined);
    await this.lock.release();
    if (err) throw err;
  }
}

const EMPTY = Buffer.alloc(0);
const ZEROS = Buffer.alloc(MAX_EXTENT);

function zeros(n: number): Buffer {
  return ZEROS.subarray(0, n);
}

function slotKey(slot: number): Buffer {
  const k = Buffer.allocUnsafe(4);
  k.writeUInt32BE(slot, 0);
  return k;
}

function lockKey(layer: number, index: number): number {
  return layer * 0x1_0000_0000 + index;
}

function isZero(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, buf.length - off);
    if (!buf.subarray(off, off + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/** Waits for every job, then throws the first failure (no job is left running unobserved). */
async function settleAll(jobs: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
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


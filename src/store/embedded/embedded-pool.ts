import { randomBytes } from 'node:crypto';
import { DisklessError } from '../../errors/index.js';
import { CHECKSUM_BLOCK } from './block-checksums.js';
import type { ExtentIo } from './extent-files.js';
import { decodeExtentEntry, encodeExtentEntry, extentKey, fullMask, ZERO_SLOT, type ExtentEntry } from './extent-entry.js';
import { ExtentLocks } from './extent-locks.js';
import { ExtentMap } from './extent-map.js';
import { ExtentReader } from './extent-reader.js';
import { ExtentWriter } from './extent-writer.js';
import { FreeSlots } from './free-slots.js';
import { zeros } from './zero-extent.js';
import { openPoolStorage, readPoolRecords, type EmbeddedPoolOptions, type PoolStorage } from './pool-storage.js';
import { settleAll } from './settle-all.js';
import { SlotReserve } from './slot-reserve.js';
import { WriteGate } from './write-gate.js';
import { Layer, type Hit, type PoolRecord, type VolumeRecord } from './pool-records.js';

type MetaOp = { readonly db: 'meta'; readonly key: string; readonly value: unknown } | { readonly db: 'extents' | 'free'; readonly key: Buffer; readonly value: Buffer | undefined };

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
  /** Mask of every block of an extent. */
  readonly fullMask: number;
  readonly layers = new Map<number, Layer>();
  readonly volumes = new Map<string, VolumeRecord>();
  /** Open devices per volume (destroy, rollback and promote refuse while any is open). */
  readonly openCount = new Map<string, number>();

  private readonly maxSlots: number;
  private readonly reserve: SlotReserve;
  private free = new FreeSlots();
  private allocatedFromFree = new Set<number>();
  private pendingFree = new Set<number>();
  private readonly dirtyEntries = new Map<number, Set<number>>();
  private readonly dirtyLayers = new Set<number>();
  private readonly dirtyVolumes = new Set<string>();
  private readonly removedLayers = new Set<number>();
  private readonly gate = new WriteGate();
  readonly locks = new ExtentLocks();
  private readonly reader: ExtentReader = new ExtentReader(this);
  private readonly writer: ExtentWriter = new ExtentWriter(this, this.reader);
  private persistChain: Promise<void> = Promise.resolve();
  private failed: DisklessError | undefined;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  readonly dir: string;
  readonly record: PoolRecord;
  readonly files: ExtentIo;

  private constructor(
    /** LMDB tables and the pool lock (pool-storage.ts). */
    private readonly store: PoolStorage,
    capacity: number | undefined,
    commitIntervalMs: number,
  ) {
    const record = (this.record = store.record);
    this.dir = store.dir;
    this.files = store.files;
    this.extentSize = record.extentSize;
    this.blocksPerExtent = record.extentSize / CHECKSUM_BLOCK;
    this.fullMask = fullMask(this.blocksPerExtent);
    this.maxSlots = capacity === undefined ? Number.MAX_SAFE_INTEGER : Math.floor(capacity / record.extentSize);
    this.reserve = new SlotReserve(store.files, record.extentSize, this.maxSlots);
    this.timer = setInterval(() => {
      if (this.hasDirty()) this.sync().catch(() => undefined); // a failure is kept in `failed` and reported to the next caller
    }, commitIntervalMs);
    this.timer.unref();
  }

  /** Opens (creating if needed) the pool directory: lock, metadata, data files; then reads every volume and layer record. */
  static async open(options: EmbeddedPoolOptions): Promise<EmbeddedPool> {
    const parts = await openPoolStorage(options);
    try {
      const pool = new EmbeddedPool(parts, options.capacity, options.commitIntervalMs ?? 5000);
      pool.load();
      return pool;
    } catch (err) {
      await parts.files.close();
      await parts.env.close().catch(() => undefined);
      await parts.lock.release();
      throw err;
    }
  }

  private load(): void {
    const { layers, volumes, free } = readPoolRecords(this.dir, this.store.meta, this.store.freeDb);
    for (const l of layers) this.layers.set(l.id, l);
    for (const v of volumes) this.volumes.set(v.name, v);
    this.free = new FreeSlots(free);
  }

  // ---- layers and lookups -------------------------------------------------------------

  layer(id: number): Layer {
    const l = this.layers.get(id);
    if (!l) throw new DisklessError('STORE_BAD_METADATA', `pool ${this.dir}: layer ${id} is missing`, { layer: id });
    return l;
  }

  /** The layer's entries, loaded from the metadata on first use. */
  entriesOf(layer: Layer): ExtentMap {
    if (layer.entries) return layer.entries;
    const m = new ExtentMap(this.blocksPerExtent);
    for (const { key, value } of this.store.extents.getRange({ start: extentKey(layer.id, 0), end: extentKey(layer.id + 1, 0) })) {
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
      new ExtentMap(this.blocksPerExtent),
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

  /** Marks an entry changed (for the next commit). */
  markDirty(layer: number, index: number): void {
    let s = this.dirtyEntries.get(layer);
    if (!s) this.dirtyEntries.set(layer, (s = new Set()));
    s.add(index);
  }

  private hasDirty(): boolean {
    return this.dirtyEntries.size > 0 || this.dirtyLayers.size > 0 || this.dirtyVolumes.size > 0 || this.removedLayers.size > 0 || this.pendingFree.size > 0 || this.allocatedFromFree.size > 0;
  }

  // ---- space -------------------------------------------------------------------------

  /**
   * A free slot for a new extent copy (STORE_NO_SPACE when the pool is at capacity):
   * `prefer` when it is free (FreeSlots), else the most recently freed, else a new one.
   */
  allocate(prefer?: number): number {
    const s = this.free.take(prefer);
    if (s !== undefined) {
      this.allocatedFromFree.add(s);
      return s;
    }
    if (this.record.nextSlot >= this.maxSlots) {
      throw new DisklessError('STORE_NO_SPACE', `pool ${this.dir} is full: ${this.maxSlots} extents of ${this.extentSize} bytes are in use (capacity)`, { pool: this.dir, capacity: this.maxSlots * this.extentSize });
    }
    this.reserve.onAllocate(this.record.nextSlot);
    return this.record.nextSlot++;
  }

  /** A slot allocated for a write that failed goes back at once (nothing references it). */
  unallocate(slot: number): void {
    this.pendingFree.add(slot);
  }

  /** True when the only free slots left are those freed in the open group: a commit makes them reusable. */
  private get spaceAfterCommit(): boolean {
    return this.free.size === 0 && this.record.nextSlot >= this.maxSlots && this.pendingFree.size > 0;
  }

  // ---- commit ------------------------------------------------------------------------

  /** Volumes a receive is writing into right now (a second receive into one is refused). */
  readonly activeReceives = new Set<string>();

  /** The failure that stopped the pool, if one did. */
  get failedReason(): DisklessError | undefined {
    return this.failed;
  }

  /** False once the pool failed or closed. */
  get usable(): boolean {
    return this.failed === undefined && !this.closed;
  }

  /** Throws the failure that stopped the pool (a commit that could not be made durable). */
  checkHealthy(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new DisklessError('STORE_CLOSED', `pool ${this.dir} is closed`, { pool: this.dir });
  }

  /**
   * Closes the open transaction group and makes it durable: with `mutation`, that runs first
   * (synchronously, with no write in flight; it must validate before it changes anything),
   * after `prepare` if given (which may do I/O, still with writes held back).
   * Resolves when the data file(s) and the metadata are on disk.
   */
  async commit<T>(mutation?: () => T, prepare?: () => Promise<void>): Promise<T> {
    this.checkHealthy();
    const { result, ops, freed } = await this.gate.exclusive(async () => {
      this.checkHealthy();
      if (prepare) await prepare();
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
        // From this commit on, metadata points at every block of the entry: no more in-place writes to them.
        if (e && e.stable !== e.mask) layer!.entries!.set(index, { ...e, stable: e.mask });
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
      await this.store.env.transaction(() => {
        for (const op of ops) {
          const db = op.db === 'meta' ? this.store.meta : op.db === 'extents' ? this.store.extents : this.store.freeDb;
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

  // ---- reads (ExtentReader) -----------------------------------------------------------

  /** Synchronous fast path of a read (cached, checksums match); false when `readRange` must do it. */
  readRangeSync(view: number, offset: number, target: Buffer): boolean {
    return this.reader.readRangeSync(view, offset, target);
  }

  /** Fills `target` with the bytes at `offset` of the view from layer `view()` down. */
  readRange(view: () => number, offset: number, target: Buffer, volume: string): Promise<void> {
    return this.reader.readRange(view, offset, target, volume);
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

  /**
   * The synchronous fast path of `writeRange` for a write of whole 4 KiB blocks inside one
   * extent of the head, when no commit barrier is up, nobody holds the extent's lock and the
   * write needs no read (ExtentWriter `writeSync`). False, with nothing written, otherwise.
   * Saves the promise chain of the async path: most of the pool's cost of a 4 KiB write.
   */
  writeRangeSync(volume: string, offset: number, bufs: readonly Buffer[], length: number): boolean {
    if (!this.usable || !this.gate.open || this.spaceAfterCommit) return false;
    const E = this.extentSize;
    const index = Math.floor(offset / E);
    const start = offset - index * E;
    if (start % CHECKSUM_BLOCK !== 0 || length % CHECKSUM_BLOCK !== 0 || start + length > E) return false;
    const vol = this.volumes.get(volume);
    if (!vol || this.locks.isHeld(vol.head, index)) return false;
    return this.writer.writeSync(this.layer(vol.head), index, start, start + length, bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs, length));
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
    if (this.spaceAfterCommit) await this.sync();
    await this.gate.enter();
    try {
      this.checkHealthy();
      const vol = this.volumes.get(volume);
      if (!vol || layer?.removed) throw new DisklessError('STORE_NOT_FOUND', `cannot write volume ${volume}: it was destroyed`, { volume });
      const head = layer ?? this.layer(vol.head);
      const unlock = await this.locks.lock(head.id, index);
      try {
        await this.writer.write(head, index, start, stop, piece.length === 1 ? piece[0]! : Buffer.concat(piece));
      } finally {
        unlock();
      }
    } finally {
      this.gate.leave();
    }
  }

  /**
   * Before snapshot layer `s` merges into `child` (the next layer up): gives the child's
   * entry at `index`, when it holds only some blocks, the blocks it lacks from `s`'s entry
   * (extent-writer.ts `absorb`). `inGate`: the caller runs inside the commit barrier.
   */
  async absorb(child: Layer, s: Layer, index: number, inGate: boolean): Promise<void> {
    if (!inGate) await this.gate.enter();
    try {
      this.checkHealthy();
      const unlock = await this.locks.lock(child.id, index);
      try {
        if (!child.removed && !s.removed) await this.writer.absorb(child, s, index);
      } finally {
        unlock();
      }
    } finally {
      if (!inGate) this.gate.leave();
    }
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
    await this.reserve.idle(); // its descriptors must stay open until it is done
    await this.files.close();
    await this.store.env.close().catch(() => undefined);
    await this.store.lock.release();
    if (err) throw err;
  }
}

const EMPTY = Buffer.alloc(0);

function slotKey(slot: number): Buffer {
  const k = Buffer.allocUnsafe(4);
  k.writeUInt32BE(slot, 0);
  return k;
}

export type { EmbeddedPoolOptions } from './pool-storage.js';

import { open } from 'node:fs/promises';
import { DisklessError } from '../../errors/index.js';
import type { BlockDevice } from '../block-device.js';
import type {
  CreateVolumeOptions,
  OpenVolumeOptions,
  ReceiveOptions,
  ScrubReport,
  SendOptions,
  SnapshotInfo,
  StorageDriver,
  StorageDriverCapabilities,
  VolumeInfo,
  VolumeOrigin,
} from '../storage-driver.js';
import { assertName, assertVolumeName } from '../volume-name.js';
import { resolveCreate } from '../create-options.js';
import { EmbeddedBlockDevice } from './embedded-block-device.js';
import { EmbeddedPool, type EmbeddedPoolOptions } from './embedded-pool.js';
import { scrubLayers, type ScrubCounts } from './pool-scrub.js';
import { locate } from './pool-views.js';
import { absorbSnapshot, mergeSnapshotInto, recountShadowed } from './layer-merge.js';
import type { Layer, VolumeRecord } from './pool-records.js';
import { receiveStream, sendStream } from './embedded-send-receive.js';

/** Import copy unit. */
const IMPORT_CHUNK = 1024 * 1024;

/**
 * The default storage driver: copy-on-write volumes in a pool directory (EmbeddedPool), with
 * ZFS semantics — constant-time snapshots and clones, rollback, promote, holds, checksummed
 * and mirrored extents, scrub, and send/receive streams (docs/store-format.md). Works on any
 * file system, with no kernel module. One process owns a pool at a time (STORE_BUSY
 * otherwise); every change is one atomic commit.
 */
export class EmbeddedStorageDriver implements StorageDriver {
  readonly name = 'embedded';
  readonly capabilities: StorageDriverCapabilities = {
    snapshots: true,
    clones: true,
    rollback: true,
    promote: true,
    holds: true,
    sendReceive: true,
    resumableReceive: true,
    scrub: true,
    unmap: true,
  };

  private constructor(readonly pool: EmbeddedPool) {}

  /** Opens (creating if needed) the pool directory `options.pool`. */
  static async open(options: EmbeddedPoolOptions): Promise<EmbeddedStorageDriver> {
    const pool = await EmbeddedPool.open(options);
    const driver = new EmbeddedStorageDriver(pool);
    try {
      await driver.dropUnfinished();
    } catch (err) {
      await pool.close().catch(() => undefined);
      throw err;
    }
    return driver;
  }

  /** Extent size of this pool, in bytes. */
  get extentSize(): number {
    return this.pool.extentSize;
  }

  private async dropUnfinished(): Promise<void> {
    const stale = [...this.pool.volumes.values()].filter((v) => v.hidden === 'import' || (v.receiving !== undefined && (!v.receiving.resumable || v.receiving.token === undefined)));
    if (stale.length === 0) return;
    await this.pool.commit(() => {
      for (const v of stale) this.dropPartial(v);
    });
  }

  // ---- volumes -----------------------------------------------------------------------

  async create(name: string, options: CreateVolumeOptions): Promise<VolumeInfo> {
    const { blockSize, size } = await resolveCreate(name, options, this.pool.extentSize * 0x1_0000_0000);
    await this.pool.commit(() => {
      this.assertFree(name);
      const head = this.pool.newLayer(0, name, 0);
      const v: VolumeRecord = { name, size, blockSize, createdAt: new Date().toISOString(), origin: options.from !== undefined ? { kind: 'import', path: options.from } : { kind: 'empty' }, head: head.id };
      if (options.from !== undefined) v.hidden = 'import';
      this.pool.volumes.set(name, v);
      this.pool.touchVolume(name);
    });
    if (options.from !== undefined) {
      try {
        await this.importFile(name, options.from, size);
        await this.pool.commit(() => {
          delete this.pool.volumes.get(name)!.hidden;
          this.pool.touchVolume(name);
        });
      } catch (err) {
        await this.pool.commit(() => this.dropVolume(this.pool.volumes.get(name)!)).catch(() => undefined);
        throw err;
      }
    }
    return this.info(name);
  }

  private async importFile(name: string, path: string, size: number): Promise<void> {
    const fh = await open(path, 'r').catch((err: unknown) => {
      throw new DisklessError('STORE_NOT_FOUND', `cannot import ${path} into volume ${name}: ${(err as Error).message}`, { field: 'from', value: path }, { cause: err });
    });
    try {
      const buf = Buffer.alloc(IMPORT_CHUNK);
      for (let pos = 0; pos < size; pos += IMPORT_CHUNK) {
        const want = Math.min(IMPORT_CHUNK, size - pos);
        buf.fill(0);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await fh.read(buf, got, want - got, pos + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got === 0) break; // the rest of the volume reads as zeros
        await this.pool.writeRange(name, pos, [buf.subarray(0, want)], want);
      }
    } finally {
      await fh.close();
    }
  }

  async list(): Promise<VolumeInfo[]> {
    const names = [...this.pool.volumes.values()].filter((v) => v.hidden === undefined).map((v) => v.name);
    return Promise.resolve(names.sort().map((n) => this.infoOf(this.pool.volumes.get(n)!)));
  }

  async exists(name: string): Promise<boolean> {
    assertVolumeName(name);
    const v = this.pool.volumes.get(name);
    return Promise.resolve(v !== undefined && v.hidden === undefined);
  }

  async info(name: string): Promise<VolumeInfo> {
    return Promise.resolve(this.infoOf(this.volume(name)));
  }

  async open(name: string, options: OpenVolumeOptions & { readonly snapshot?: string } = {}): Promise<BlockDevice> {
    this.pool.checkHealthy();
    const v = this.volume(name);
    if (options.snapshot !== undefined) {
      const s = this.findSnapshot(name, options.snapshot);
      return Promise.resolve(new EmbeddedBlockDevice(this.pool, name, v.size, v.blockSize, true, s.id));
    }
    return Promise.resolve(new EmbeddedBlockDevice(this.pool, name, v.size, v.blockSize, options.readOnly ?? false));
  }

  async destroy(name: string, options: { readonly recursive?: boolean } = {}): Promise<void> {
    await this.pool.commit(() => {
      const v = this.volume(name);
      const snaps = this.ownSnapshots(v);
      if (snaps.length > 0 && !options.recursive) {
        throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot destroy volume ${name}: it has snapshots ${snaps.map((s) => `${name}@${s.record.snapshot!}`).join(', ')} (destroy them first, or use recursive)`, {
          volume: name,
          snapshots: snaps.map((s) => s.record.snapshot),
        });
      }
      for (const s of snaps) this.assertDroppable(s, 'destroy volume');
      this.assertClosed(name, 'destroy');
      this.dropVolume(v);
    });
  }

  /** Drops a volume's own layers (freeing their slots) and its record. */
  private dropVolume(v: VolumeRecord): void {
    for (const l of this.ownLayers(v)) this.pool.dropLayer(l);
    if (v.receiving && v.receiving.layer !== v.head) {
      const partial = this.pool.layers.get(v.receiving.layer);
      if (partial) this.pool.dropLayer(partial);
    }
    this.pool.volumes.delete(v.name);
    this.pool.touchVolume(v.name);
  }

  // ---- snapshots ---------------------------------------------------------------------

  async listSnapshots(volume?: string): Promise<SnapshotInfo[]> {
    const vols = volume !== undefined ? [this.volume(volume)] : [...this.pool.volumes.values()].filter((v) => v.hidden === undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return Promise.resolve(vols.flatMap((v) => this.ownSnapshots(v).map((l) => this.snapshotInfo(l))));
  }

  async snapshot(volume: string, snapshot: string): Promise<SnapshotInfo> {
    assertName(snapshot, 'snapshot');
    const layer = await this.pool.commit(() => {
      const v = this.volume(volume);
      if (this.ownSnapshots(v).some((s) => s.record.snapshot === snapshot)) {
        throw new DisklessError('STORE_EXISTS', `cannot snapshot ${volume}@${snapshot}: that snapshot already exists`, { volume, snapshot });
      }
      return this.freezeHead(v, snapshot);
    });
    return this.snapshotInfo(layer);
  }

  /** Turns the volume's head into snapshot `snapshot` and puts a new empty head on it. */
  private freezeHead(v: VolumeRecord, snapshot: string, guid?: string): Layer {
    const head = this.pool.layer(v.head);
    head.record.snapshot = snapshot;
    head.record.createdAt = new Date().toISOString();
    if (guid !== undefined) head.record.guid = guid;
    this.pool.touchLayer(head);
    const next = this.pool.newLayer(head.id, v.name, head.record.referencedExtents);
    v.head = next.id;
    this.pool.touchVolume(v.name);
    return head;
  }

  async destroySnapshot(volume: string, snapshot: string): Promise<void> {
    // The child's partial extents take the snapshot's blocks first (writes flowing), then once
    // more for what was written meanwhile, inside the commit, which merges the layers.
    const first = this.destroyPlan(volume, snapshot);
    await absorbSnapshot(this.pool, first.s, first.child, false);
    await this.pool.commit(
      () => {
        const { s, child } = this.destroyPlan(volume, snapshot);
        mergeSnapshotInto(this.pool, s, child);
      },
      async () => {
        const { s, child } = this.destroyPlan(volume, snapshot);
        await absorbSnapshot(this.pool, s, child, true);
      },
    );
  }

  /** The snapshot layer to destroy and the layer it merges into; throws when it may not be destroyed. */
  private destroyPlan(volume: string, snapshot: string): { s: Layer; child: Layer } {
    const v = this.volume(volume);
    const s = this.findSnapshot(volume, snapshot);
    this.assertDroppable(s, 'destroy snapshot');
    const child = this.childInVolume(v, s);
    if (v.receiving && this.pool.layers.get(v.receiving.layer)?.record.parent === s.id) {
      throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot destroy ${volume}@${snapshot}: a resumable receive is building on it (abort it first)`, { volume, snapshot });
    }
    return { s, child };
  }

  async clone(volume: string, snapshot: string, name: string): Promise<VolumeInfo> {
    assertVolumeName(name);
    await this.pool.commit(() => {
      this.volume(volume);
      const s = this.findSnapshot(volume, snapshot);
      this.assertFree(name);
      const head = this.pool.newLayer(s.id, name, s.record.referencedExtents);
      this.pool.volumes.set(name, { name, size: this.pool.volumes.get(volume)!.size, blockSize: this.pool.volumes.get(volume)!.blockSize, createdAt: new Date().toISOString(), origin: { kind: 'empty' }, head: head.id });
      this.pool.touchVolume(name);
    });
    return this.info(name);
  }

  async rollback(volume: string, snapshot: string, options: { readonly destroyLater?: boolean } = {}): Promise<void> {
    await this.pool.commit(() => {
      const v = this.volume(volume);
      const s = this.findSnapshot(volume, snapshot);
      const snaps = this.ownSnapshots(v);
      const later = snaps.slice(snaps.indexOf(s) + 1);
      if (later.length > 0 && !options.destroyLater) {
        throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot roll ${volume} back to @${snapshot}: later snapshots exist (${later.map((l) => `@${l.record.snapshot!}`).join(', ')}); roll back with destroyLater (-r) to destroy them`, {
          volume,
          snapshot,
          later: later.map((l) => l.record.snapshot),
        });
      }
      for (const l of later) this.assertDroppable(l, 'roll back past');
      this.assertClosed(volume, 'roll back');
      if (v.receiving) throw new DisklessError('STORE_BUSY', `cannot roll back ${volume}: a resumable receive is pending (abort it first)`, { volume });
      this.pool.dropLayer(this.pool.layer(v.head));
      for (const l of later) this.pool.dropLayer(l);
      const head = this.pool.newLayer(s.id, volume, s.record.referencedExtents);
      v.head = head.id;
      s.record.shadowed = 0;
      this.pool.touchLayer(s);
      this.pool.touchVolume(volume);
    });
  }

  async promote(volume: string): Promise<void> {
    await this.pool.commit(() => {
      const c = this.volume(volume);
      const chain = this.pool.chain(c.head);
      const at = chain.findIndex((l) => l.record.owner !== volume);
      if (at < 0) throw new DisklessError('STORE_NOT_CLONE', `cannot promote ${volume}: it is not a clone`, { volume });
      const origin = chain[at]!;
      const from = this.pool.volumes.get(origin.record.owner)!;
      const moving: Layer[] = [];
      for (const l of chain.slice(at)) {
        if (l.record.owner !== from.name) break;
        moving.push(l);
      }
      const own = new Set(this.ownSnapshots(c).map((l) => l.record.snapshot));
      const clash = moving.find((l) => own.has(l.record.snapshot));
      if (clash) throw new DisklessError('STORE_EXISTS', `cannot promote ${volume}: it already has a snapshot named ${clash.record.snapshot!}, which would move to it from ${from.name}`, { volume, snapshot: clash.record.snapshot });
      for (const l of moving) {
        l.record.owner = volume;
        this.pool.touchLayer(l);
      }
      const base = from.origin;
      from.origin = c.origin;
      c.origin = base;
      const childOfOrigin = chain[at - 1]!; // the clone's lowest own layer: now the next layer up from the origin in the same volume
      recountShadowed(this.pool, origin, childOfOrigin);
      this.pool.touchVolume(volume);
      this.pool.touchVolume(from.name);
    });
  }

  async hold(volume: string, snapshot: string, tag: string): Promise<void> {
    assertName(tag, 'tag');
    await this.pool.commit(() => {
      const s = this.findSnapshot(volume, snapshot);
      if (s.record.holds.includes(tag)) throw new DisklessError('STORE_EXISTS', `cannot hold ${volume}@${snapshot} with tag ${tag}: it already has that hold`, { volume, snapshot, tag });
      s.record.holds = [...s.record.holds, tag].sort();
      this.pool.touchLayer(s);
    });
  }

  async release(volume: string, snapshot: string, tag: string): Promise<void> {
    assertName(tag, 'tag');
    await this.pool.commit(() => {
      const s = this.findSnapshot(volume, snapshot);
      if (!s.record.holds.includes(tag)) throw new DisklessError('STORE_NOT_FOUND', `cannot release ${volume}@${snapshot} from tag ${tag}: no such hold (holds: ${s.record.holds.join(', ') || 'none'})`, { volume, snapshot, tag });
      s.record.holds = s.record.holds.filter((t) => t !== tag);
      this.pool.touchLayer(s);
    });
  }

  // ---- streams, scrub ----------------------------------------------------------------

  send(volume: string, snapshot: string, options: SendOptions = {}): AsyncIterable<Buffer> {
    return sendStream(this, volume, snapshot, options);
  }

  receive(name: string, stream: AsyncIterable<Buffer>, options: ReceiveOptions = {}): Promise<SnapshotInfo> {
    return receiveStream(this, name, stream, options);
  }

  async receiveResumeToken(name: string): Promise<string | undefined> {
    assertVolumeName(name);
    const v = this.pool.volumes.get(name);
    return Promise.resolve(v?.receiving?.token);
  }

  async abortReceive(name: string): Promise<void> {
    assertVolumeName(name);
    await this.pool.commit(() => {
      const v = this.pool.volumes.get(name);
      if (!v?.receiving) throw new DisklessError('STORE_NOT_FOUND', `cannot abort a receive into ${name}: none is pending`, { volume: name });
      this.dropPartial(v);
    });
  }

  /** Drops an unfinished import or receive: the whole hidden volume, or an incremental's partial layer. */
  dropPartial(v: VolumeRecord): void {
    if (v.hidden !== undefined) {
      this.dropVolume(v);
      return;
    }
    if (v.receiving) {
      const partial = this.pool.layers.get(v.receiving.layer);
      if (partial) this.pool.dropLayer(partial);
      delete v.receiving;
      this.pool.touchVolume(v.name);
    }
  }

  async scrub(volume?: string): Promise<ScrubReport> {
    this.pool.checkHealthy();
    const layers = volume !== undefined ? this.pool.chain(this.volume(volume).head) : [...this.pool.layers.values()];
    const counts: ScrubCounts = { bytesChecked: 0, errors: 0, repaired: 0, unrecoverable: 0 };
    await scrubLayers(this.pool, layers, counts);
    return { volume, ...counts };
  }

  /** Diagnostics for tests: where the 4 KiB block holding byte `offset` of the volume (or snapshot) lives, primary copy first. */
  async debugLocate(volume: string, offset: number, snapshot?: string): Promise<{ path: string; position: number; length: number }[]> {
    const v = this.volume(volume);
    const view = snapshot !== undefined ? this.findSnapshot(volume, snapshot).id : v.head;
    return Promise.resolve(locate(this.pool, view, offset));
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  // ---- helpers (also used by embedded-send-receive.ts) ------------------------------------

  /** A visible volume, or STORE_NOT_FOUND. */
  volume(name: string): VolumeRecord {
    assertVolumeName(name);
    const v = this.pool.volumes.get(name);
    if (!v || v.hidden !== undefined) throw new DisklessError('STORE_NOT_FOUND', `cannot find volume ${name}`, { volume: name });
    return v;
  }

  /** Throws STORE_EXISTS when `name` is taken (also by a hidden partial volume). */
  assertFree(name: string): void {
    const v = this.pool.volumes.get(name);
    if (v) {
      const why = v.hidden === 'receive' ? ' (a resumable receive is pending into it: resume or abort it)' : '';
      throw new DisklessError('STORE_EXISTS', `cannot create volume ${name}: it already exists${why}`, { volume: name });
    }
  }

  /** Snapshot layers of `v`, oldest first. */
  ownSnapshots(v: VolumeRecord): Layer[] {
    const out: Layer[] = [];
    for (let l = this.pool.layer(v.head); l.record.parent !== 0; ) {
      const p = this.pool.layer(l.record.parent);
      if (p.record.owner !== v.name) break;
      out.push(p);
      l = p;
    }
    return out.reverse();
  }

  /** The head and every snapshot layer of `v`. */
  ownLayers(v: VolumeRecord): Layer[] {
    return [this.pool.layer(v.head), ...this.ownSnapshots(v)];
  }

  findSnapshot(volume: string, snapshot: string): Layer {
    assertName(snapshot, 'snapshot');
    const v = this.volume(volume);
    const s = this.ownSnapshots(v).find((l) => l.record.snapshot === snapshot);
    if (!s) throw new DisklessError('STORE_NOT_FOUND', `cannot find snapshot ${volume}@${snapshot}`, { volume, snapshot });
    return s;
  }

  /** Volumes cloned from snapshot layer `s`. */
  clonesOf(s: Layer): string[] {
    const out: string[] = [];
    for (const l of this.pool.layers.values()) {
      if (l.record.parent === s.id && l.record.owner !== s.record.owner) {
        const v = this.pool.volumes.get(l.record.owner);
        if (v && (v.hidden === undefined || v.receiving?.layer !== l.id)) out.push(l.record.owner);
      }
    }
    return [...new Set(out)].sort();
  }

  private childInVolume(v: VolumeRecord, s: Layer): Layer {
    for (const l of this.ownLayers(v)) if (l.record.parent === s.id) return l;
    throw new DisklessError('STORE_BAD_METADATA', `pool ${this.pool.dir}: snapshot ${v.name}@${s.record.snapshot!} has no layer above it`, { volume: v.name });
  }

  private assertDroppable(s: Layer, op: string): void {
    const name = `${s.record.owner}@${s.record.snapshot!}`;
    if (s.record.holds.length > 0) throw new DisklessError('STORE_HELD', `cannot ${op} ${name}: it is held (${s.record.holds.join(', ')}); release the holds first`, { snapshot: name, holds: s.record.holds });
    const clones = this.clonesOf(s);
    if (clones.length > 0) throw new DisklessError('STORE_HAS_DEPENDENTS', `cannot ${op} ${name}: clones depend on it (${clones.join(', ')}); destroy or promote them first`, { snapshot: name, clones });
  }

  private assertClosed(volume: string, op: string): void {
    const n = this.pool.openCount.get(volume) ?? 0;
    if (n > 0) throw new DisklessError('STORE_BUSY', `cannot ${op} volume ${volume}: it is open ${n} time(s) (a target serves it?)`, { volume, open: n });
  }

  infoOf(v: VolumeRecord): VolumeInfo {
    const E = this.pool.extentSize;
    const head = this.pool.layer(v.head);
    const used = this.ownLayers(v).reduce((n, l) => n + l.record.dataExtents, 0) * E;
    return { name: v.name, size: v.size, blockSize: v.blockSize, used, referenced: head.record.referencedExtents * E, written: head.record.dataExtents * E, createdAt: v.createdAt, origin: this.originOf(v) };
  }

  private originOf(v: VolumeRecord): VolumeOrigin {
    for (const l of this.pool.chain(v.head)) if (l.record.owner !== v.name) return { kind: 'clone', volume: l.record.owner, snapshot: l.record.snapshot! };
    return v.origin;
  }

  snapshotInfo(l: Layer): SnapshotInfo {
    const E = this.pool.extentSize;
    return {
      volume: l.record.owner,
      name: l.record.snapshot!,
      createdAt: l.record.createdAt,
      used: l.record.shadowed * E,
      referenced: l.record.referencedExtents * E,
      written: l.record.dataExtents * E,
      guid: l.record.guid,
      clones: this.clonesOf(l),
      holds: [...l.record.holds],
    };
  }

  /** Used by receive: freezes a volume's head as a snapshot with a given guid. */
  freezeHeadAs(v: VolumeRecord, snapshot: string, guid: string): Layer {
    return this.freezeHead(v, snapshot, guid);
  }
}

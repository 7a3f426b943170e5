import { DisklessError, isDisklessError } from '../../errors/index.js';
import { Crc32c } from '../../wire/checksum/crc32c.js';
import { hardwareCrc32c } from '../../net/crc32c-hardware.js';
import { SendStreamEncoder } from '../../wire/send-stream/send-stream-encoder.js';
import { readSendStream } from '../../wire/send-stream/send-stream-decoder.js';
import { decodeResumeToken, encodeResumeToken, resumedHeader, type ResumeState } from '../../wire/send-stream/resume-token.js';
import type { SendStreamHeader, StreamPosition } from '../../wire/send-stream/send-stream-format.js';
import type { ReceiveOptions, SendOptions, SnapshotInfo } from '../storage-driver.js';
import { assertVolumeName } from '../volume-name.js';
import { CHECKSUM_BLOCK } from './block-checksums.js';
import type { EmbeddedStorageDriver } from './embedded-storage-driver.js';
import { ZERO_SLOT } from './extent-entry.js';
import type { Layer, VolumeRecord } from './pool-records.js';
import { recountShadowed } from './layer-merge.js';

/** A resumable receive records a resume point after this many stream bytes (and when it is cut). */
const CHECKPOINT_BYTES = 64 * 1024 * 1024;

let crc: Crc32c | undefined;
function crc32c(): Crc32c {
  return (crc ??= new Crc32c(hardwareCrc32c()));
}

/**
 * `send`: the snapshot as a stream (src/wire/send-stream, docs/store-format.md). A full
 * stream carries every extent with data in the snapshot's view; an incremental one (base =
 * an earlier snapshot in the same chain: one of the volume's own, or as "volume@snap" the
 * origin a clone came from) carries, for each extent written in the layers between, exactly
 * the 4 KiB blocks written there (their written-block masks), so its size tracks the bytes
 * changed. Blocks are read through the pool, so a checksum failure stops the send with
 * STORE_CORRUPT instead of shipping bad data. With a resume token the stream restarts where
 * the receiver stopped.
 */
export async function* sendStream(driver: EmbeddedStorageDriver, volume: string, snapshot: string, options: SendOptions): AsyncGenerator<Buffer> {
  const pool = driver.pool;
  const v = driver.volume(volume);
  const snap = driver.findSnapshot(volume, snapshot);
  const chain = pool.chain(snap.id);
  let base: Layer | undefined;
  const resume = options.resumeToken !== undefined ? decodeResumeToken(options.resumeToken) : undefined;
  if (options.base === undefined && resume?.header.baseGuid !== undefined) {
    // `zfs send -t`: the token alone says what to send, including the base of an incremental.
    const want = resume.header.baseGuid;
    base = chain.find((l) => l !== snap && l.record.guid === want);
    if (!base) throw new DisklessError('STORE_NOT_FOUND', `cannot resume sending ${volume}@${snapshot}: the token's base snapshot (guid ${want}) is not an earlier snapshot of ${volume} or of its origin`, { volume, snapshot, baseGuid: want });
  } else if (options.base !== undefined) {
    const at = options.base.indexOf('@');
    base = at < 0 ? driver.findSnapshot(volume, options.base) : driver.findSnapshot(options.base.slice(0, at), options.base.slice(at + 1));
    if (base === snap || !chain.includes(base)) {
      throw new DisklessError('STORE_NOT_FOUND', `cannot send ${volume}@${snapshot} incrementally from ${options.base}: it is not an earlier snapshot of ${volume} or of its origin`, { volume, snapshot, base: options.base });
    }
  }
  const between = base ? chain.slice(0, chain.indexOf(base)) : chain;
  let header: SendStreamHeader = {
    kind: base ? 'incremental' : 'full',
    blockSize: v.blockSize as 512 | 4096,
    volumeSize: v.size,
    snapshotGuid: snap.record.guid,
    baseGuid: base?.record.guid,
    createdAt: Date.parse(snap.record.createdAt),
    volume,
    snapshot,
    resume: undefined,
  };
  if (resume !== undefined) header = resumedHeader(header, resume);
  const from = header.resume?.offset ?? 0;

  // Extents to visit, and for an incremental stream which blocks of each.
  const masks = new Map<number, number>();
  for (const l of between) for (const [index, e] of pool.entriesOf(l)) masks.set(index, ((masks.get(index) ?? 0) | (base ? e.mask : 0xffffffff)) >>> 0);
  const indices = [...masks.keys()].sort((a, b) => a - b);

  const enc = new SendStreamEncoder(header, { crc: crc32c() });
  yield enc.start();
  const E = pool.extentSize;
  const B = CHECKSUM_BLOCK;
  const view = (): number => snap.id;
  for (const index of indices) {
    const extentStart = index * E;
    const extentEnd = Math.min(v.size, extentStart + E);
    if (extentEnd <= from) continue;
    const hit = pool.lookup(snap.id, index);
    const isData = hit !== undefined && hit.entry.slot !== ZERO_SLOT;
    // Runs of wanted blocks in this extent, clipped to the volume and to the resume point.
    const mask = masks.get(index)!;
    for (let b = 0; b < E / B; ) {
      if (((mask >>> b) & 1) === 0) {
        b++;
        continue;
      }
      let e = b;
      while (e < E / B && ((mask >>> e) & 1) === 1) e++;
      const runStart = Math.max(from, extentStart + b * B);
      const runEnd = Math.min(extentEnd, extentStart + e * B);
      b = e;
      if (runEnd <= runStart) continue;
      if (!isData) {
        if (base) yield enc.zero(runStart, runEnd - runStart); // a full stream starts from zeros
        continue;
      }
      const buf = Buffer.allocUnsafe(runEnd - runStart);
      await pool.readRange(view, runStart, buf, volume);
      for (const part of enc.data(runStart, buf)) yield part;
    }
  }
  yield enc.end();
}

/**
 * `receive`: applies a stream. A full stream builds a new hidden volume; an incremental one
 * builds a new layer on the volume's latest snapshot (which must be the stream's base). The
 * volume becomes visible — or the layer becomes the new snapshot — only in the commit after
 * the END record verified, so a corrupt or truncated stream leaves existing data untouched.
 * With `resumable`, an interrupted receive keeps what arrived (checkpointed every 64 MiB and
 * at the cut) and throws STORE_RECEIVE_INTERRUPTED with the resume token.
 */
export async function receiveStream(driver: EmbeddedStorageDriver, name: string, stream: AsyncIterable<Buffer>, options: ReceiveOptions): Promise<SnapshotInfo> {
  assertVolumeName(name);
  const pool = driver.pool;
  pool.checkHealthy();
  if (pool.activeReceives.has(name)) throw new DisklessError('STORE_BUSY', `cannot receive into ${name}: another receive into it is running`, { volume: name });
  pool.activeReceives.add(name);
  try {
    return await receiveInto(driver, name, stream, options);
  } finally {
    pool.activeReceives.delete(name);
  }
}

async function receiveInto(driver: EmbeddedStorageDriver, name: string, stream: AsyncIterable<Buffer>, options: ReceiveOptions): Promise<SnapshotInfo> {
  const pool = driver.pool;
  const pending = pool.volumes.get(name)?.receiving;
  let resume: ResumeState | undefined;
  if (pending) {
    if (pending.token === undefined) throw new DisklessError('STORE_BUSY', `cannot receive into ${name}: a receive into it is pending with no resume point yet`, { volume: name });
    resume = decodeResumeToken(pending.token);
  }
  const resumable = options.resumable ?? pending?.resumable ?? false;
  let target: Layer | undefined;
  let header: SendStreamHeader | undefined;
  let lastPosition: StreamPosition | undefined;
  let lastBytes = resume?.bytes ?? 0;
  let sinceCheckpoint = 0;

  const checkpoint = async (): Promise<string | undefined> => {
    if (!header || !lastPosition || !target) return undefined;
    const token = encodeResumeToken({ header, position: lastPosition, bytes: lastBytes });
    await pool.commit(() => {
      const v = pool.volumes.get(name);
      if (v?.receiving) {
        v.receiving.token = token;
        pool.touchVolume(name);
      }
    });
    return token;
  };

  try {
    const events = readSendStream(stream, { crc: crc32c(), ...(resume ? { resume } : {}) });
    for await (const ev of events) {
      if (ev.type === 'header') {
        header = ev.header;
        target = pending ? pool.layer(pending.layer) : await beginReceive(driver, name, ev.header, resumable, options.force ?? false);
        lastPosition = ev.position;
        continue;
      }
      if (ev.type === 'end') break;
      if (ev.type === 'data') await pool.writeRange(name, ev.offset, [ev.data], ev.data.length, target);
      else await pool.zeroRange(name, ev.offset, ev.length, target);
      sinceCheckpoint += ev.bytes - lastBytes;
      lastPosition = ev.position;
      lastBytes = ev.bytes;
      if (resumable && sinceCheckpoint >= CHECKPOINT_BYTES) {
        sinceCheckpoint = 0;
        await checkpoint();
      }
    }
    if (!header || !target) throw new DisklessError('STORE_STREAM_INVALID', `cannot receive into ${name}: the stream is empty`, { volume: name, reason: 'truncated' });
  } catch (err) {
    const streamFailure = isDisklessError(err, 'STORE_STREAM_INVALID') || !(err instanceof DisklessError);
    if (resumable && target && streamFailure && !pool.failedReason) {
      const token = await checkpoint().catch(() => undefined);
      if (token !== undefined) {
        throw new DisklessError('STORE_RECEIVE_INTERRUPTED', `receive into ${name} stopped at byte ${lastPosition?.offset ?? 0} of the volume: ${(err as Error).message}; resume it with this token`, { volume: name, resumeToken: token, offset: lastPosition?.offset ?? 0 }, { cause: err });
      }
    }
    if (target && !pool.failedReason) {
      await pool
        .commit(() => {
          const v = pool.volumes.get(name);
          if (v?.receiving) driver.dropPartial(v);
        })
        .catch(() => undefined);
    }
    throw err;
  }
  const done = header;
  const snapLayer = await pool.commit(() => finishReceive(driver, name, target!, done));
  return driver.snapshotInfo(snapLayer);
}

/** Creates what a new receive writes into: a hidden volume (full) or a partial layer on the base (incremental). */
async function beginReceive(driver: EmbeddedStorageDriver, name: string, h: SendStreamHeader, resumable: boolean, force: boolean): Promise<Layer> {
  const pool = driver.pool;
  return pool.commit(() => {
    if (h.kind === 'full') {
      driver.assertFree(name);
      const head = pool.newLayer(0, name, 0);
      const v: VolumeRecord = { name, size: h.volumeSize, blockSize: h.blockSize, createdAt: new Date().toISOString(), origin: { kind: 'receive' }, head: head.id, hidden: 'receive', receiving: { layer: head.id, resumable } };
      pool.volumes.set(name, v);
      pool.touchVolume(name);
      return head;
    }
    const v = driver.volume(name);
    const mismatch = (field: string, value: unknown, allowed: string): never => {
      throw new DisklessError('STORE_STREAM_INVALID', `cannot receive ${h.volume}@${h.snapshot} into ${name}: ${field} ${String(value)} does not match (${allowed})`, { volume: name, reason: 'mismatch', field, value, allowed });
    };
    if (h.volumeSize !== v.size) mismatch('volumeSize', h.volumeSize, `${v.size}, the volume's size`);
    if (h.blockSize !== v.blockSize) mismatch('blockSize', h.blockSize, `${v.blockSize}, the volume's block size`);
    const snaps = driver.ownSnapshots(v);
    const latest = snaps[snaps.length - 1];
    if (!latest || latest.record.guid !== h.baseGuid) {
      mismatch('baseGuid', h.baseGuid, latest ? `${latest.record.guid}, the guid of ${name}@${latest.record.snapshot!}, its latest snapshot` : `a snapshot; ${name} has none`);
    }
    if (snaps.some((s) => s.record.snapshot === h.snapshot || s.record.guid === h.snapshotGuid)) {
      throw new DisklessError('STORE_EXISTS', `cannot receive ${h.volume}@${h.snapshot} into ${name}: it already has that snapshot`, { volume: name, snapshot: h.snapshot });
    }
    const head = pool.layer(v.head);
    if (!force && pool.entriesOf(head).size > 0) {
      mismatch('target', `${name} (modified since @${latest!.record.snapshot!})`, 'a volume unchanged since its latest snapshot: roll it back, or receive with force (-F)');
    }
    if (v.receiving) throw new DisklessError('STORE_BUSY', `cannot receive into ${name}: another receive into it is pending`, { volume: name });
    const layer = pool.newLayer(latest!.id, name, latest!.record.referencedExtents);
    v.receiving = { layer: layer.id, resumable };
    pool.touchVolume(name);
    return layer;
  });
}

/** The END record verified: make the received data a snapshot (and the volume visible). */
function finishReceive(driver: EmbeddedStorageDriver, name: string, target: Layer, h: SendStreamHeader): Layer {
  const pool = driver.pool;
  const v = pool.volumes.get(name);
  if (!v || v.receiving?.layer !== target.id) throw new DisklessError('STORE_BUSY', `cannot finish the receive into ${name}: it was aborted meanwhile`, { volume: name });
  if (v.hidden === 'receive') {
    delete v.hidden;
    delete v.receiving;
    return driver.freezeHeadAs(v, h.snapshot, h.snapshotGuid);
  }
  // Incremental: the partial layer becomes the new snapshot; the (unchanged, or forced) head is dropped.
  pool.dropLayer(pool.layer(v.head));
  delete v.receiving;
  v.head = target.id;
  pool.touchVolume(name);
  recountShadowed(pool, pool.layer(target.record.parent), target);
  return driver.freezeHeadAs(v, h.snapshot, h.snapshotGuid);
}

import { DisklessError, isDisklessError } from '../../errors/index.js';
import type { ReceiveOptions, SendOptions, SnapshotInfo } from '../storage-driver.js';
import { assertName, assertVolumeName } from '../volume-name.js';
import { zfsError } from './zfs-command.js';
import { zfsUnsupported, type ZfsDatasets } from './zfs-datasets.js';
import type { ZfsInventory } from './zfs-inventory.js';
import { decodeZfsStreamBegin, ZFS_RECORD_HEADER_BYTES, ZfsStreamFramer, type ZfsStreamBegin } from './zfs-stream.js';
import { notFoundSnapshot, snapshotRow, volumeRow } from './zfs-tree.js';

/**
 * The zfs driver's send and receive (ZfsStorageDriver delegates its stream calls here):
 * `zfs send` piped out as an async iterable, and `zfs receive` fed through a ZfsStreamFramer
 * after the stream's BEGIN record has been checked against the target (full into a new
 * volume, incremental onto its latest snapshot), so a refused stream changes nothing.
 */
export class ZfsSendReceive {
  constructor(
    private readonly datasets: ZfsDatasets,
    private readonly inventory: ZfsInventory,
  ) {}

  private get resumable(): boolean {
    return this.datasets.features.resumableReceive;
  }

  /** A full or incremental (`options.base`) send stream of `volume@snapshot`, or the rest of an interrupted one (`options.resumeToken`). */
  async *send(volume: string, snapshot: string, options: SendOptions): AsyncGenerator<Buffer> {
    assertVolumeName(volume);
    if (options.resumeToken !== undefined) {
      if (!this.resumable) throw zfsUnsupported('resume a send of', volume, 'resumable receive (zfs send -t) needs feature@extensible_dataset');
      yield* this.streamFrom(['send', '-t', options.resumeToken], `send volume ${volume} from a resume token`, { volume });
      return;
    }
    assertName(snapshot, 'snapshot');
    const tree = await this.datasets.tree(false);
    const s = snapshotRow(tree, volume, snapshot);
    const args = ['send'];
    if (options.base !== undefined) {
      assertName(options.base, 'base');
      const d = volumeRow(tree, volume);
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

  /** Receives `stream` into volume `name`; always lets the source clean up (`return()`), whatever the outcome. */
  async receive(name: string, stream: AsyncIterable<Buffer>, options: ReceiveOptions): Promise<SnapshotInfo> {
    assertVolumeName(name);
    if (options.resumable && !this.resumable) {
      throw zfsUnsupported('receive resumably into', name, `pool ${this.datasets.pool} (version ${this.datasets.features.poolVersion}) has no resumable receive (zfs receive -s)`);
    }
    const iterator = stream[Symbol.asyncIterator]();
    try {
      return await this.receiveFrom(name, iterator, options);
    } finally {
      // A refused or failed receive stops reading: let the source clean up (a local `zfs send` is killed).
      await iterator.return?.().catch(() => undefined);
    }
  }

  /** The token of an interrupted resumable receive into `name`, or undefined when none is pending. */
  receiveResumeToken(name: string): Promise<string | undefined> {
    try {
      assertVolumeName(name);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.resumable) return Promise.reject(zfsUnsupported('resume a receive into', name, `pool ${this.datasets.pool} has no resumable receive`));
    return this.datasets.zfs(['get', '-H', '-o', 'value', 'receive_resume_token', this.datasets.ds(name)], `read the resume token of ${name}`, { volume: name }).then(
      (out) => (out.trim() === '-' || out.trim() === '' ? undefined : out.trim()),
      (err: unknown) => {
        if (isDisklessError(err, 'STORE_NOT_FOUND')) return undefined;
        throw err;
      },
    );
  }

  /** Discards the partial state of an interrupted resumable receive into `name`. */
  async abortReceive(name: string): Promise<void> {
    assertVolumeName(name);
    if (!this.resumable) throw zfsUnsupported('abort a receive into', name, `pool ${this.datasets.pool} has no resumable receive`);
    if ((await this.receiveResumeToken(name)) === undefined) throw new DisklessError('STORE_NOT_FOUND', `cannot abort a receive into ${name}: none is pending`, { volume: name });
    await this.datasets.zfs(['receive', '-A', this.datasets.ds(name)], `abort the receive into ${name}`, { volume: name });
  }

  /**
   * Runs `zfs <args>` and yields its stdout; a non-zero exit throws after the last chunk.
   * Stopping early kills it; so does waiting longer than the command timeout for its next chunk.
   */
  private async *streamFrom(args: string[], what: string, context: Record<string, unknown>): AsyncGenerator<Buffer> {
    const proc = this.datasets.spawnZfs(args, 'ignore');
    const chunks = (proc.child.stdout! as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const r = await proc.within(chunks.next(), what, context);
        if (r.done) break;
        yield r.value;
      }
      const end = await proc.within(proc.done, what, context);
      finished = true;
      if (end.status !== 0) throw zfsError(end, what, context);
    } finally {
      if (!finished) {
        proc.child.kill('SIGTERM');
        // Stop reading (destroys stdout): the process only counts as closed once its pipes are.
        await chunks.return?.().catch(() => undefined);
        await proc.done;
      }
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
    const tree = await this.datasets.tree(false);
    const existing = tree.volumes.get(name);
    if (begin.fromGuid === undefined) {
      if (existing) throw new DisklessError('STORE_EXISTS', `cannot receive a full stream into volume ${name}: it exists`, { volume: name, snapshot: begin.snapshot });
    } else {
      if (!existing) throw new DisklessError('STORE_NOT_FOUND', `cannot receive an incremental stream into volume ${name}: it does not exist`, { volume: name });
      const latest = existing.snapshots[existing.snapshots.length - 1];
      const latestGuid = latest ? await this.inventory.guidOf(latest.full, latest.props) : undefined;
      if (latestGuid !== begin.fromGuid) {
        throw new DisklessError('STORE_STREAM_INVALID', `cannot receive into volume ${name}: the stream's base (guid ${begin.fromGuid}) is not its latest snapshot (${latest ? `${latest.name}, guid ${latestGuid}` : 'none'})`, { volume: name, fromGuid: begin.fromGuid, latest: latest?.name, latestGuid });
      }
      if (existing.snapshots.some((s) => s.name === begin.snapshot)) throw new DisklessError('STORE_EXISTS', `cannot receive snapshot ${begin.snapshot} into volume ${name}: it exists`, { volume: name, snapshot: begin.snapshot });
    }
    const args = ['receive', ...(options.resumable ? ['-s'] : []), ...(options.force ? ['-F'] : []), this.datasets.ds(name)];
    await this.pipeInto(args, head, sourceDone ? undefined : iterator, { volume: name, snapshot: begin.snapshot }, options.resumable === true);
    await this.afterReceive(name, begin);
    return this.inventory.findSnapshot(name, begin.snapshot);
  }

  /** Feeds `head` then the rest of `iterator` to `zfs <args>` through a ZfsStreamFramer; rejects with the mapped error. */
  private async pipeInto(args: string[], head: Buffer[], iterator: AsyncIterator<Buffer> | undefined, target: { volume: string; snapshot: string }, resumable: boolean): Promise<void> {
    const what = `receive into volume ${target.volume}`;
    const proc = this.datasets.spawnZfs(args, 'pipe');
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
          // zfs that takes no input for the command timeout is hung: killed, and the receive fails with STORE_ZFS.
          const room = Promise.race([
            exit,
            new Promise<void>((resolve) => {
              done = resolve;
              stdin.on('drain', done);
              stdin.on('close', done);
            }),
          ]);
          try {
            await proc.within(room, what, target);
          } finally {
            stdin.off('drain', done);
            stdin.off('close', done);
          }
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
      // Trailing garbage, an unreadable source, or zfs hung: end zfs's input without the END record so it fails and keeps nothing.
      refusal = err;
    }
    if (exited) stdin.destroy();
    else stdin.end();
    const end = await proc.within(proc.done, what, target);
    if (refusal !== undefined) {
      if (end.status === 0) await this.undoReceive(target.volume, target.snapshot);
      throw refusal;
    }
    if (end.status !== 0) {
      const err = zfsError(end, what, target, true);
      if (resumable && this.resumable) {
        const token = await this.receiveResumeToken(target.volume).catch(() => undefined);
        if (token !== undefined) throw new DisklessError('STORE_RECEIVE_INTERRUPTED', `${err.message} (resumable: send again with the resume token)`, { ...err.data, resumeToken: token }, { cause: err });
      }
      throw err;
    }
  }

  /** A receive that zfs completed although the framer refused the stream (cannot happen with the END record held back): undo it. */
  private async undoReceive(volume: string, snapshot: string): Promise<void> {
    const d = (await this.datasets.tree(false)).volumes.get(volume);
    if (!d) return;
    if (d.snapshots.length <= 1) await this.datasets.destroy(d.dataset, ['-r'], `undo receive into ${volume}`, { volume });
    else await this.datasets.destroy(`${d.dataset}@${snapshot}`, [], `undo receive into ${volume}`, { volume });
  }

  /** Records what a received volume is, the snapshot's guid, and refreshes the FUSE mount (zfs-fuse serves stale pages after a receive). */
  private async afterReceive(name: string, begin: ZfsStreamBegin): Promise<void> {
    const ds = this.datasets.ds(name);
    const { features } = this.datasets;
    if (begin.fromGuid === undefined) await this.datasets.zfs(['set', 'diskless:origin=receive', ds], `record the origin of received volume ${name}`, { volume: name });
    if (!features.guidProperty) await this.datasets.zfs(['set', `diskless:guid=${begin.toGuid}`, `${ds}@${begin.snapshot}`], `record the guid of ${name}@${begin.snapshot}`, { volume: name });
    if (!features.zvols && begin.fromGuid !== undefined) await this.datasets.remount(ds, name);
  }
}

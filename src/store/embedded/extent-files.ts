import { constants as fsc } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DisklessError } from '../../errors/index.js';
import { cachedPrefix, preadNoWait, UNSUPPORTED, type PreadNoWait } from '../../net/pread-no-wait.js';
import { blockAllocation } from '../file/block-allocation.js';
import { InlineWriter } from '../inline-writer.js';
import { settleAll } from './settle-all.js';
import { composedReadBlocks, nativeReadBlocks, UNSUPPORTED as VERIFY_UNSUPPORTED, verifyScratch, type ReadBlocks } from './verified-read.js';

/** Name of the data file in the pool directory and in the mirror directory. */
export const DATA_FILE = 'extents.dat';

/** Which copy of the data a read or write addresses. */
export type Copy = 'primary' | 'mirror';

/**
 * What the pool needs from its data files. `ExtentFiles` is the implementation; the
 * power-loss test wraps it to decide which writes a simulated power cut keeps.
 */
export interface ExtentIo {
  readonly mirrored: boolean;
  readonly primaryPath: string;
  readonly mirrorPath: string | undefined;
  read(copy: Copy, position: number, target: Buffer): Promise<void>;
  /**
   * Fills target[start, end) from the primary copy at `position` only if every 4 KiB block
   * covering it is in the page cache (no waiting), and puts each covering block's CRC32C in
   * `crcs` (first at 0): returns how many, or -1 (not cached; target may hold part of the
   * data). At most MAX_READ_BLOCKS covering blocks (see verified-read.ts).
   */
  readBlocks?(position: number, target: Buffer, start: number, end: number): number;
  /** The checksums of the last `readBlocks`. */
  readonly crcs?: Uint32Array;
  write(position: number, data: Buffer | readonly Buffer[], only?: Copy): Promise<void>;
  /** Writes `data` at `position` on every copy on this thread, or returns false (then `write` must do it). */
  writeSync?(position: number, data: Buffer): boolean;
  /** Reserves disk blocks for [position, position + length) on every copy ahead of use; false when the file system cannot (nothing changes then). */
  reserve?(position: number, length: number): Promise<boolean>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The pool's extent data: slot s of an extent size E lives at byte s*E of `extents.dat` in
 * the pool directory, and — with a mirror — at the same place in the mirror directory's
 * `extents.dat` (a second disk). Writes go to every copy; reads come from one; `datasync`
 * makes every completed write durable on every copy before metadata may point at it.
 * ENOSPC becomes STORE_NO_SPACE (the slot was new, so nothing referenced is damaged); other
 * failures STORE_IO.
 */
export class ExtentFiles implements ExtentIo {
  private noWait: PreadNoWait | undefined = preadNoWait();
  /** The synchronous read with checksums, until the file system refuses RWF_NOWAIT. */
  private verified: ReadBlocks | undefined = nativeReadBlocks() ?? (this.noWait && composedReadBlocks(this.noWait));
  private readonly scratch = verifyScratch();
  readonly crcs = this.scratch.crcs;
  private readonly inlinePrimary = new InlineWriter();
  private readonly inlineMirror = new InlineWriter();

  private constructor(
    private readonly primary: FileHandle,
    private readonly mirrorHandle: FileHandle | undefined,
    readonly primaryPath: string,
    readonly mirrorPath: string | undefined,
  ) {}

  static async open(poolDir: string, mirrorDir: string | undefined): Promise<ExtentFiles> {
    const primaryPath = join(poolDir, DATA_FILE);
    const mirrorPath = mirrorDir === undefined ? undefined : join(mirrorDir, DATA_FILE);
    const primary = await openData(primaryPath);
    let mirror: FileHandle | undefined;
    try {
      if (mirrorPath !== undefined) mirror = await openData(mirrorPath);
    } catch (err) {
      await primary.close();
      throw err;
    }
    return new ExtentFiles(primary, mirror, primaryPath, mirrorPath);
  }

  get mirrored(): boolean {
    return this.mirrorHandle !== undefined;
  }

  /** Path and handle of one copy. */
  pathOf(copy: Copy): string | undefined {
    return copy === 'primary' ? this.primaryPath : this.mirrorPath;
  }

  readBlocks(position: number, target: Buffer, start: number, end: number): number {
    if (!this.verified) return -1;
    const n = this.verified(this.primary.fd, position, target, start, end, this.scratch);
    if (n >= 0) return n;
    if (n === VERIFY_UNSUPPORTED) this.verified = undefined;
    return -1;
  }

  /** Bytes of `target` the page cache gave (see cachedPrefix); 0 once the file system refused RWF_NOWAIT. */
  private cached(fh: FileHandle, position: number, target: Buffer): number {
    if (!this.noWait) return 0;
    const done = cachedPrefix(this.noWait, fh.fd, target, position);
    if (done !== UNSUPPORTED) return done;
    this.noWait = undefined;
    return 0;
  }

  /** Reads `target.length` bytes at `position` of one copy (page cache first, then the thread pool); bytes past the end read as zeros. */
  async read(copy: Copy, position: number, target: Buffer): Promise<void> {
    const fh = copy === 'primary' ? this.primary : this.mirrorHandle;
    if (!fh) throw new DisklessError('STORE_IO', 'cannot read the mirror copy: this pool has no mirror', { copy });
    let done = this.cached(fh, position, target);
    while (done < target.length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(target, done, target.length - done, position + done));
      } catch (err) {
        throw ioError('read', this.pathOf(copy)!, position, err);
      }
      if (bytesRead === 0) {
        target.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }

  /**
   * The synchronous fast path of `write`: true when every copy took the whole write on this
   * thread (InlineWriter); false when the caller must use `write` (a copy may then hold part
   * of the data, which `write` overwrites).
   */
  writeSync(position: number, data: Buffer): boolean {
    const bufs = [data];
    if (this.inlinePrimary.write(this.primary.fd, bufs, position, data.length) !== data.length) return false;
    return !this.mirrorHandle || this.inlineMirror.write(this.mirrorHandle.fd, bufs, position, data.length) === data.length;
  }

  /**
   * Reserves disk blocks for slots about to be handed out (fallocate KEEP_SIZE through the
   * native addon), so that scattered first writes into new slots land in one contiguous
   * allocation: writing 4 KiB into a reserved range costs about what overwriting does, into a
   * hole about twice that, and the holes fragment the file. False where it cannot be done.
   */
  async reserve(position: number, length: number): Promise<boolean> {
    const pre = blockAllocation()?.preallocate;
    if (!pre) return false;
    try {
      await pre(this.primary.fd, position, length);
      if (this.mirrorHandle) await pre(this.mirrorHandle.fd, position, length);
      return true;
    } catch {
      return false;
    }
  }

  /** Writes `data` at `position` on every copy (or only `only`, for healing one bad copy). */
  async write(position: number, data: Buffer | readonly Buffer[], only?: Copy): Promise<void> {
    const bufs = Buffer.isBuffer(data) ? [data] : [...data];
    const length = bufs.reduce((n, b) => n + b.length, 0);
    const jobs: Promise<void>[] = [];
    if (only !== 'mirror' && this.inlinePrimary.write(this.primary.fd, bufs, position, length) !== length) jobs.push(writeAll(this.primary, this.primaryPath, bufs, position));
    if (this.mirrorHandle && only !== 'primary' && this.inlineMirror.write(this.mirrorHandle.fd, bufs, position, length) !== length) jobs.push(writeAll(this.mirrorHandle, this.mirrorPath!, bufs, position));
    if (jobs.length === 0) return;
    await settleAll(jobs);
  }

  /** fdatasync on every copy. */
  async datasync(): Promise<void> {
    const jobs = [this.primary.datasync()];
    if (this.mirrorHandle) jobs.push(this.mirrorHandle.datasync());
    try {
      await Promise.all(jobs);
    } catch (err) {
      throw ioError('sync', this.primaryPath, 0, err);
    }
  }

  async close(): Promise<void> {
    await this.primary.close().catch(() => undefined);
    await this.mirrorHandle?.close().catch(() => undefined);
  }
}

async function openData(path: string): Promise<FileHandle> {
  try {
    return await open(path, fsc.O_RDWR | fsc.O_CREAT, 0o600);
  } catch (err) {
    throw ioError('open', path, 0, err);
  }
}

async function writeAll(fh: FileHandle, path: string, bufs: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = bufs;
  while (rest.length > 0) {
    let written: number;
    try {
      ({ bytesWritten: written } = await fh.writev(rest, pos));
    } catch (err) {
      throw ioError('write', path, pos, err);
    }
    pos += written;
    const next: Buffer[] = [];
    let skip = written;
    for (const b of rest) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      next.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    rest = next;
  }
}

function ioError(op: string, path: string, position: number, err: unknown): DisklessError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DisklessError('STORE_NO_SPACE', `cannot ${op} ${path} at ${position}: the file system is full (${code})`, { path, position, errno: code }, { cause: err });
  }
  return new DisklessError('STORE_IO', `cannot ${op} ${path} at ${position}: ${(err as Error).message}`, { path, position, operation: op, errno: code }, { cause: err });
}

import type { FileHandle } from 'node:fs/promises';
import { DisklessError } from '../../errors/index.js';
import type { BlockDevice, BlockDeviceCapabilities } from '../block-device.js';
import { preadNoWait, UNSUPPORTED, type PreadNoWait } from '../../net/pread-no-wait.js';
import { writevSync } from 'node:fs';

/** Inline writes (writeInline): page size, largest inline write, what counts as slow, and the back-off after one. */
const PAGE = 4096;
const INLINE_MAX_BYTES = 1024 * 1024;
const INLINE_SLOW_MS = 2;
const INLINE_BACKOFF_MS = 1000;

/**
 * A volume file opened for block I/O: positional reads and writes on one file handle, so
 * concurrent commands never share a cursor. Built by `FileStorageDriver.open`.
 *
 * Unmap: punching holes needs fallocate(FALLOC_FL_PUNCH_HOLE), which Node cannot reach
 * without native code, and writing zeros instead would allocate the very blocks unmap is
 * meant to free. So this device reports `unmap: false`, the SCSI layer advertises no
 * thin provisioning (no LBPME, no UNMAP), and `unmap()` throws STORE_UNSUPPORTED.
 */
export class FileBlockDevice implements BlockDevice {
  readonly capabilities: BlockDeviceCapabilities = { unmap: false, volatileWriteCache: true };
  private closed = false;
  /** performance.now() before which writes go through the thread pool (see writeInline). */
  private inlineAfter = 0;
  /** The page-cache-only read, until the file system says it does not support it. */
  private noWait: PreadNoWait | undefined = preadNoWait();

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    readonly blockSize: number,
    readonly readOnly: boolean,
    /** Volume name, for error data. */
    readonly name: string,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(offset, buf);
    return buf;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    this.check(offset, target.length, 'read');
    let done = this.readCached(offset, target);
    if (done === target.length) return;
    while (done < target.length) {
      const { bytesRead } = await this.io('read', () => this.handle.read(target, done, target.length - done, offset + done));
      if (bytesRead === 0) {
        // The file is shorter than the recorded size (truncated behind our back): holes read as zeros.
        target.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }

  /**
   * The part of the read that is in the page cache, copied on this thread (preadv2 RWF_NOWAIT,
   * src/net/pread-no-wait.ts): bytes done from the start of `target`, 0 when nothing was
   * cached or the addon is missing. A cached 4 KiB read costs ~0.5 µs here against a thread
   * pool round trip several times that (and a context switch on a small machine); a miss costs
   * one failed syscall and the rest goes through the pool as before.
   */
  private readCached(offset: number, target: Buffer): number {
    const pread = this.noWait;
    if (!pread) return 0;
    let done = 0;
    try {
      while (done < target.length) {
        const n = pread(this.handle.fd, target, done, target.length, offset + done);
        if (n === UNSUPPORTED) this.noWait = undefined;
        if (n <= 0) break; // not cached, unsupported, or end of file: the pool read handles each
        done += n;
      }
    } catch {
      return done; // an I/O error: let the pool read report it as STORE_IO
    }
    return done;
  }

  /**
   * Writes whole, page-aligned ranges of at most 1 MiB on this thread (pwritev into the page
   * cache), returning the bytes written (0 when it did not try or failed: the pool write then
   * does the rest and reports errors). Buffered writes cannot be made non-blocking on ext4
   * (pwritev2 RWF_NOWAIT: EOPNOTSUPP), so this guards by measurement instead: aligned full
   * pages never read the disk, and a write that still takes longer than INLINE_SLOW_MS (dirty
   * page throttling under sustained writes) sends every write through the thread pool for
   * the next INLINE_BACKOFF_MS, so at most one such stall reaches the event loop per back-off.
   * Measured (bench:iscsi, docs/iscsi.md): 4 KiB qd32 writes 34-41k -> 44-74k IOPS, 64 KiB
   * 280-480 -> 800-1040 MB/s, at half the CPU; the thread pool round trip cost more than the copy.
   */
  private writeInline(bufs: readonly Buffer[], position: number, length: number): number {
    if (length > INLINE_MAX_BYTES || position % PAGE !== 0 || length % PAGE !== 0 || this.closed) return 0;
    const now = performance.now();
    if (now < this.inlineAfter) return 0;
    let n = 0;
    try {
      n = writevSync(this.handle.fd, bufs as Buffer[], position);
    } catch {
      n = 0;
    }
    const end = performance.now();
    if (end - now > INLINE_SLOW_MS) this.inlineAfter = end + INLINE_BACKOFF_MS;
    return n;
  }

  async write(offset: number, data: Buffer | readonly Buffer[], options: { fua?: boolean } = {}): Promise<void> {
    let bufs: Buffer[] = Buffer.isBuffer(data) ? [data] : [...data];
    const length = bufs.reduce((n, b) => n + b.length, 0);
    this.check(offset, length, 'write');
    if (this.readOnly) throw new DisklessError('STORE_READ_ONLY', `cannot write volume ${this.name}: it is open read-only`, { volume: this.name, offset, length });
    let pos = offset;
    const inline = this.writeInline(bufs, pos, length);
    if (inline > 0) {
      pos += inline;
      bufs = skipBytes(bufs, inline);
    }
    while (bufs.length > 0) {
      const { bytesWritten } = await this.io('write', () => this.handle.writev(bufs, pos));
      pos += bytesWritten;
      bufs = skipBytes(bufs, bytesWritten);
    }
    if (options.fua) await this.flush();
  }

  async flush(): Promise<void> {
    this.checkOpen('flush');
    if (this.readOnly) return;
    await this.io('flush', () => this.handle.datasync());
  }

  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length, 'unmap');
    throw new DisklessError('STORE_UNSUPPORTED', `cannot unmap on volume ${this.name}: the file driver cannot punch holes from Node`, { volume: this.name, operation: 'unmap', driver: 'file' });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  private checkOpen(op: string): void {
    if (this.closed) throw new DisklessError('STORE_CLOSED', `cannot ${op} volume ${this.name}: the device is closed`, { volume: this.name, operation: op });
  }

  private check(offset: number, length: number, op: string): void {
    this.checkOpen(op);
    const bs = this.blockSize;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset % bs !== 0 || length % bs !== 0 || offset + length > this.size) {
      throw new DisklessError('STORE_OUT_OF_RANGE', `cannot ${op} ${length} bytes at offset ${offset} of volume ${this.name}: size is ${this.size}, block size ${bs}`, {
        volume: this.name,
        operation: op,
        offset,
        length,
        size: this.size,
        blockSize: bs,
      });
    }
  }

  private async io<T>(op: string, fn: () => Promise<T>): Promise<T> {
    this.checkOpen(op);
    try {
      return await fn();
    } catch (err) {
      throw new DisklessError('STORE_IO', `cannot ${op} volume ${this.name}: ${(err as Error).message}`, { volume: this.name, operation: op, errno: (err as NodeJS.ErrnoException).code }, { cause: err });
    }
  }
}

/** Drops the first `n` bytes from a list of buffers (after a short writev). */
function skipBytes(bufs: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
  const rest = bufs.slice(i);
  if (rest.length > 0 && n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

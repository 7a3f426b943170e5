import { fstatSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { DisklessError } from '../../errors/index.js';
import type { AllocationExtent, BlockDevice, BlockDeviceCapabilities } from '../block-device.js';
import { cachedPrefix, preadNoWait, UNSUPPORTED, type PreadNoWait } from '../../net/pread-no-wait.js';
import { InlineWriter } from '../inline-writer.js';
import { checkBlockRange } from '../block-range.js';
import { blockAllocation, NO_MORE, type BlockAllocation } from './block-allocation.js';

/** The one log call a device makes (a pino Logger fits). */
export interface WarnLog {
  warn(obj: object, msg: string): void;
}

/** Options of `new FileBlockDevice(...)`. */
export interface FileBlockDeviceOptions {
  /** Where the unmap probe says why unmap is off (warn), and a punch that falls back to zeros. */
  readonly log?: WarnLog;
  /** The hole-punching and seeking functions; default the native addon's, null for none (tests inject failures). */
  readonly allocation?: BlockAllocation | null;
}

/** The probe punches this many bytes this far past the end of the file (nothing is there to free). */
const PROBE_ALIGN = 1024 * 1024;
/** Zeros are written in pieces of this size when a punch falls back to writing. */
const ZERO_CHUNK = 1024 * 1024;

/**
 * A volume file opened for block I/O: positional reads and writes on one file handle, so
 * concurrent commands never share a cursor. Built by `FileStorageDriver.open` and `diskless
 * export iscsi`.
 *
 * Thin provisioning: `unmap` punches a hole (fallocate PUNCH_HOLE | KEEP_SIZE, native/
 * block_alloc.c) so the file system frees the blocks and the range reads as zeros (SCSI
 * LBPRZ=1); `allocationStatus` reports mapped and deallocated extents from SEEK_DATA /
 * SEEK_HOLE. `capabilities.unmap` is decided once, at construction, by punching a range past
 * the end of the file (which frees nothing): false — with a warning naming the reason — when
 * the file system answers EOPNOTSUPP, when the file is not a regular file (a block device
 * would discard real blocks to be probed), when the device is read-only, or when the native
 * addon is missing. A punch that later fails with EOPNOTSUPP anyway writes zeros instead: the
 * range still reads as zeros, it is just not freed.
 */
export class FileBlockDevice implements BlockDevice {
  readonly capabilities: BlockDeviceCapabilities;
  /** Why `capabilities.unmap` is false (undefined when it is true). */
  readonly unmapUnavailable: string | undefined;
  private closed = false;
  /** Page-aligned writes on this thread (src/store/inline-writer.ts). */
  private readonly inline = new InlineWriter();
  /** The page-cache-only read, until the file system says it does not support it. */
  private noWait: PreadNoWait | undefined = preadNoWait();
  private readonly allocation: BlockAllocation | undefined;
  private readonly log: WarnLog | undefined;
  /** Punches running on the thread pool: close waits for them so the descriptor is not reused under one. */
  private readonly punches = new Set<Promise<void>>();
  private warnedPunchFallback = false;

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    readonly blockSize: number,
    readonly readOnly: boolean,
    /** Volume name, for error data. */
    readonly name: string,
    options: FileBlockDeviceOptions = {},
  ) {
    this.allocation = options.allocation === null ? undefined : (options.allocation ?? blockAllocation());
    this.log = options.log;
    this.unmapUnavailable = this.probeUnmap();
    if (this.unmapUnavailable !== undefined && !readOnly) this.log?.warn({ volume: name, reason: this.unmapUnavailable }, `volume ${name}: unmap off (fully provisioned): ${this.unmapUnavailable}`);
    this.capabilities = { unmap: this.unmapUnavailable === undefined, volatileWriteCache: true };
  }

  /** undefined when holes can be punched in this file, else the reason they cannot. */
  private probeUnmap(): string | undefined {
    if (this.readOnly) return 'the device is read-only';
    const alloc = this.allocation;
    if (!alloc) return 'the native addon (punchHole) is not built: run `make build`';
    let fileSize: number;
    try {
      const st = fstatSync(this.handle.fd);
      if (!st.isFile()) return 'not a regular file (a block device cannot be probed without discarding data)';
      fileSize = st.size;
    } catch (err) {
      return `fstat failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    const past = (Math.floor(Math.max(fileSize, this.size) / PROBE_ALIGN) + 1) * PROBE_ALIGN;
    try {
      alloc.punchHoleSync(this.handle.fd, past, this.blockSize);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EOPNOTSUPP' || code === 'ENOSYS') return 'the file system cannot punch holes (fallocate PUNCH_HOLE: EOPNOTSUPP)';
      return `the hole-punching probe failed: ${(err as Error).message}`;
    }
  }

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
    if (!this.noWait) return 0;
    const done = cachedPrefix(this.noWait, this.handle.fd, target, offset);
    if (done !== UNSUPPORTED) return done;
    this.noWait = undefined;
    return 0;
  }


  async write(offset: number, data: Buffer | readonly Buffer[], options: { fua?: boolean } = {}): Promise<void> {
    let bufs: Buffer[] = Buffer.isBuffer(data) ? [data] : [...data];
    const length = bufs.reduce((n, b) => n + b.length, 0);
    this.check(offset, length, 'write');
    if (this.readOnly) throw new DisklessError('STORE_READ_ONLY', `cannot write volume ${this.name}: it is open read-only`, { volume: this.name, offset, length });
    let pos = offset;
    const inline = this.closed ? 0 : this.inline.write(this.handle.fd, bufs, pos, length);
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

  /**
   * Frees [offset, offset + length): a hole punched in the file; the range reads as zeros
   * afterwards. Throws STORE_UNSUPPORTED when `capabilities.unmap` is false.
   */
  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length, 'unmap');
    if (this.readOnly) throw new DisklessError('STORE_READ_ONLY', `cannot unmap volume ${this.name}: it is open read-only`, { volume: this.name, offset, length });
    const alloc = this.allocation;
    if (!this.capabilities.unmap || !alloc) {
      throw new DisklessError('STORE_UNSUPPORTED', `cannot unmap on volume ${this.name}: ${this.unmapUnavailable ?? 'unmap is off'}`, { volume: this.name, operation: 'unmap', driver: 'file' });
    }
    if (length === 0) return;
    const punch = this.io('unmap', () => alloc.punchHole(this.handle.fd, offset, length));
    this.punches.add(punch);
    try {
      await punch;
    } catch (err) {
      if ((err as DisklessError).data?.['errno'] !== 'EOPNOTSUPP') throw err;
      // The probe said yes but this file system refuses after all (a file moved, an odd mount): zeros keep LBPRZ true.
      if (!this.warnedPunchFallback) {
        this.warnedPunchFallback = true;
        this.log?.warn({ volume: this.name }, `volume ${this.name}: punching a hole failed with EOPNOTSUPP; unmapped ranges are written with zeros instead`);
      }
      await this.writeZeros(offset, length);
    } finally {
      this.punches.delete(punch);
    }
  }

  /**
   * Mapped and deallocated extents from `offset` (SEEK_DATA / SEEK_HOLE), in whole blocks: a
   * block with any allocated byte is mapped. A file shorter than the volume reads as a hole
   * past its end.
   */
  async allocationStatus(offset: number, length: number, maxExtents: number): Promise<AllocationExtent[]> {
    this.check(offset, length, 'query allocation of');
    const alloc = this.allocation;
    if (!this.capabilities.unmap || !alloc) {
      throw new DisklessError('STORE_UNSUPPORTED', `cannot query allocation of volume ${this.name}: ${this.unmapUnavailable ?? 'unmap is off'}`, { volume: this.name, operation: 'allocationStatus', driver: 'file' });
    }
    if (!Number.isSafeInteger(maxExtents) || maxExtents < 1) throw new RangeError(`allocationStatus: maxExtents must be a positive integer, got ${maxExtents}`);
    const bs = this.blockSize;
    const end = offset + length;
    const fd = this.handle.fd;
    const out: AllocationExtent[] = [];
    /** Appends (or extends the last extent); false when a new extent would exceed maxExtents. */
    const push = (from: number, to: number, mapped: boolean): boolean => {
      const last = out[out.length - 1];
      if (last && last.mapped === mapped && last.offset + last.length === from) {
        out[out.length - 1] = { offset: last.offset, length: to - last.offset, mapped };
        return true;
      }
      if (out.length >= maxExtents) return false;
      out.push({ offset: from, length: to - from, mapped });
      return true;
    };
    const seek = (what: 'seekData' | 'seekHole', at: number): number => {
      this.checkOpen('query allocation of');
      try {
        return alloc[what](fd, at);
      } catch (err) {
        throw new DisklessError('STORE_IO', `cannot query allocation of volume ${this.name}: ${(err as Error).message}`, { volume: this.name, operation: what, errno: (err as NodeJS.ErrnoException).code }, { cause: err });
      }
    };
    let pos = offset;
    while (pos < end) {
      const data = seek('seekData', pos);
      // pos is block-aligned and data >= pos, so rounding down stays >= pos.
      const dataBlock = data === NO_MORE || data >= end ? end : Math.floor(data / bs) * bs;
      if (dataBlock > pos) {
        if (!push(pos, dataBlock, false)) break;
        pos = dataBlock;
        if (pos >= end) break;
      }
      const hole = seek('seekHole', pos);
      const to = Math.max(pos + bs, hole === NO_MORE ? end : Math.min(end, Math.ceil(hole / bs) * bs));
      if (!push(pos, to, true)) break;
      pos = to;
    }
    return out;
  }

  private async writeZeros(offset: number, length: number): Promise<void> {
    const zeros = Buffer.alloc(Math.min(ZERO_CHUNK, length));
    for (let done = 0; done < length; ) {
      const n = Math.min(zeros.length, length - done);
      await this.write(offset + done, zeros.subarray(0, n));
      done += n;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A punch still running on the thread pool holds the descriptor number: let it finish first.
    await Promise.allSettled([...this.punches]);
    await this.handle.close();
  }

  private checkOpen(op: string): void {
    if (this.closed) throw new DisklessError('STORE_CLOSED', `cannot ${op} volume ${this.name}: the device is closed`, { volume: this.name, operation: op });
  }

  private check(offset: number, length: number, op: string): void {
    this.checkOpen(op);
    checkBlockRange(this.name, this.size, this.blockSize, offset, length, op);
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

import type { FileHandle } from 'node:fs/promises';
import { DisklessError } from '../../errors/index.js';
import { checkBlockRange } from '../block-range.js';
import { ForwardingBlockDevice } from '../forwarding-block-device.js';
import type { DirectIo, DirectIoAlignment } from './direct-io.js';
import type { FileBlockDevice } from './file-block-device.js';

/** Bounce buffers up to this size are kept for reuse (per power-of-two size, a few each). */
const POOLED_MAX = 1024 * 1024;
const POOLED_PER_SIZE = 8;

/**
 * A file (or block device) read and written with O_DIRECT: the bytes move between the disk and
 * the caller without passing through the server's page cache, like `vblade -d`. For a server
 * whose clients cache what they read (every booted node does), caching it again on the server
 * only evicts other data; and the target keeps many reads in flight, so the disk's own
 * parallelism, not one read at a time, sets the pace.
 *
 * O_DIRECT needs aligned memory and aligned offsets (`alignment`, from statx): the device's
 * block size is at least the offset alignment, so every call is aligned (callers that address
 * smaller sectors, like AoE's SectorIo, read whole blocks and read-modify-write partial ones),
 * and the bytes go through an aligned bounce buffer (the callers' buffers are frames and
 * socket chunks at any address). Flush, unmap and allocation queries go to `buffered`, a
 * FileBlockDevice on an ordinary descriptor of the same file (fdatasync works per file, and
 * a punched hole drops cached pages as well).
 */
export class DirectFileBlockDevice extends ForwardingBlockDevice {
  private closed = false;
  private readonly pool = new Map<number, Buffer[]>();

  constructor(
    private readonly direct: FileHandle,
    buffered: FileBlockDevice,
    readonly alignment: DirectIoAlignment,
    private readonly io: DirectIo,
  ) {
    super(buffered);
    if (buffered.blockSize % alignment.offset !== 0) {
      throw new RangeError(`DirectFileBlockDevice: block size ${buffered.blockSize} is not a multiple of the direct I/O offset alignment ${alignment.offset}`);
    }
  }

  override async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(offset, buf);
    return buf;
  }

  override async readInto(offset: number, target: Buffer): Promise<void> {
    this.check(offset, target.length, 'read');
    const bounce = this.take(target.length);
    try {
      let done = 0;
      while (done < target.length) {
        const { bytesRead } = await this.call('read', () => this.direct.read(bounce, done, target.length - done, offset + done));
        done += bytesRead;
        // End of file (a file shortened behind our back, or its last partial block): the rest reads as zeros.
        if (bytesRead === 0 || done % this.alignment.offset !== 0) {
          bounce.fill(0, done, target.length);
          break;
        }
      }
      bounce.copy(target, 0, 0, target.length);
    } finally {
      this.give(bounce);
    }
  }

  override async write(offset: number, data: Buffer | readonly Buffer[], options: { fua?: boolean } = {}): Promise<void> {
    const bufs = Buffer.isBuffer(data) ? [data] : data;
    const length = bufs.reduce((n, b) => n + b.length, 0);
    this.check(offset, length, 'write');
    if (this.readOnly) throw new DisklessError('STORE_READ_ONLY', `cannot write volume ${this.name}: it is open read-only`, { volume: this.name, offset, length });
    if (length === 0) return;
    const bounce = this.take(length);
    try {
      let at = 0;
      for (const b of bufs) at += b.copy(bounce, at);
      for (let done = 0; done < length; ) {
        const { bytesWritten } = await this.call('write', () => this.direct.write(bounce, done, length - done, offset + done));
        done += bytesWritten;
      }
    } finally {
      this.give(bounce);
    }
    if (options.fua) await this.flush();
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.clear();
    await this.direct.close();
    await super.close();
  }

  private get name(): string {
    return (this.inner as FileBlockDevice).name;
  }

  /** An aligned buffer of at least `length` bytes: a pooled one of the next power of two, or a new one. */
  private take(length: number): Buffer {
    const size = pooledSize(length, this.blockSize);
    const free = size === undefined ? undefined : this.pool.get(size)?.pop();
    return (free ?? this.io.alignedBuffer(size ?? length, this.alignment.memory)).subarray(0, length);
  }

  private give(buf: Buffer): void {
    const size = pooledSize(buf.length, this.blockSize);
    if (size === undefined || this.closed) return;
    const whole = Buffer.from(buf.buffer, buf.byteOffset, size);
    const list = this.pool.get(size) ?? [];
    if (list.length < POOLED_PER_SIZE) list.push(whole);
    this.pool.set(size, list);
  }

  private check(offset: number, length: number, op: string): void {
    if (this.closed) throw new DisklessError('STORE_CLOSED', `cannot ${op} volume ${this.name}: the device is closed`, { volume: this.name, operation: op });
    checkBlockRange(this.name, this.size, this.blockSize, offset, length, op);
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new DisklessError('STORE_IO', `cannot ${op} volume ${this.name} (direct I/O): ${(err as Error).message}`, { volume: this.name, operation: op, errno: (err as NodeJS.ErrnoException).code }, { cause: err });
    }
  }
}

/** The pool size class for `length` (the next power of two, at least one block), or undefined above POOLED_MAX. */
function pooledSize(length: number, blockSize: number): number | undefined {
  if (length > POOLED_MAX) return undefined;
  let size = blockSize;
  while (size < length) size *= 2;
  return size;
}

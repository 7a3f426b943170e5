import { DisklessError } from '../../errors/index.js';
import type { AllocationExtent, BlockDevice, BlockDeviceCapabilities } from '../block-device.js';
import type { EmbeddedPool } from './embedded-pool.js';
import { mappedRuns } from './pool-views.js';
import { checkBlockRange } from '../block-range.js';

/**
 * One open volume (or snapshot, read-only) of an embedded pool. Reads resolve each extent
 * through the layer chain and verify every 4 KiB block; writes go copy-on-write through the
 * pool; `flush` (and FUA) commits the pool's open transaction group. The head layer is
 * looked up per call, so a snapshot taken while the device is open simply moves later writes
 * to the new head.
 */
export class EmbeddedBlockDevice implements BlockDevice {
  readonly capabilities: BlockDeviceCapabilities = { unmap: true, volatileWriteCache: true };
  private closed = false;
  private readonly view: () => number;

  constructor(
    private readonly pool: EmbeddedPool,
    /** Volume name (for a snapshot: the volume it belongs to when opened). */
    readonly name: string,
    readonly size: number,
    readonly blockSize: number,
    readonly readOnly: boolean,
    /** A snapshot layer to read from, instead of the volume's head. */
    snapshotLayer?: number,
  ) {
    this.view =
      snapshotLayer !== undefined
        ? () => snapshotLayer
        : () => {
            const v = pool.volumes.get(name);
            if (!v) throw new DisklessError('STORE_NOT_FOUND', `volume ${name} was destroyed while open`, { volume: name });
            return v.head;
          };
    pool.openCount.set(name, (pool.openCount.get(name) ?? 0) + 1);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(offset, buf);
    return buf;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    this.check(offset, target.length, 'read');
    if (target.length === 0 || this.pool.readRangeSync(this.view(), offset, target)) return;
    await this.pool.readRange(this.view, offset, target, this.name);
  }

  async write(offset: number, data: Buffer | readonly Buffer[], options: { fua?: boolean } = {}): Promise<void> {
    const bufs = Buffer.isBuffer(data) ? [data] : data;
    const length = bufs.reduce((n, b) => n + b.length, 0);
    this.check(offset, length, 'write');
    this.writable('write', offset, length);
    if (length > 0 && !this.pool.writeRangeSync(this.name, offset, bufs, length)) await this.pool.writeRange(this.name, offset, bufs, length);
    if (options.fua) await this.pool.sync();
  }

  async flush(): Promise<void> {
    this.checkOpen('flush');
    if (this.readOnly) return;
    await this.pool.sync();
  }

  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length, 'unmap');
    this.writable('unmap', offset, length);
    if (length > 0) await this.pool.zeroRange(this.name, offset, length);
  }

  allocationStatus(offset: number, length: number, maxExtents: number): Promise<AllocationExtent[]> {
    this.check(offset, length, 'query allocation of');
    return Promise.resolve(mappedRuns(this.pool, this.view(), offset, length, Math.max(1, maxExtents)));
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      const n = (this.pool.openCount.get(this.name) ?? 1) - 1;
      if (n <= 0) this.pool.openCount.delete(this.name);
      else this.pool.openCount.set(this.name, n);
    }
    return Promise.resolve();
  }

  private writable(op: string, offset: number, length: number): void {
    if (this.readOnly) throw new DisklessError('STORE_READ_ONLY', `cannot ${op} volume ${this.name}: it is open read-only`, { volume: this.name, offset, length });
  }

  private checkOpen(op: string): void {
    if (this.closed) throw new DisklessError('STORE_CLOSED', `cannot ${op} volume ${this.name}: the device is closed`, { volume: this.name });
  }

  private check(offset: number, length: number, op: string): void {
    this.checkOpen(op);
    checkBlockRange(this.name, this.size, this.blockSize, offset, length, op);
  }
}

import { DisklessError, isDisklessError } from '../../errors/index.js';
import type { BlockDevice } from '../block-device.js';
import { ForwardingBlockDevice } from '../forwarding-block-device.js';

/**
 * A volume or snapshot of the zfs driver, over the file device of its `volume.img`:
 *   - a read that ZFS fails with EIO is STORE_CORRUPT (ZFS returns EIO exactly when a block
 *     fails its checksum and no copy is good; SCSI MEDIUM ERROR through the target), never
 *     a retryable STORE_IO;
 *   - `close()` closes the file and then runs `release` (for a snapshot: destroys the
 *     temporary clone it is served from, since zfs-fuse has no `.zfs/snapshot`). Idempotent.
 */
export class ZfsVolumeDevice extends ForwardingBlockDevice {
  private closing: Promise<void> | undefined;

  constructor(
    inner: BlockDevice,
    private readonly release: () => Promise<void> = () => Promise.resolve(),
  ) {
    super(inner);
  }

  override read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length).catch((err: unknown) => corrupt(err, offset, length));
  }

  override readInto(offset: number, target: Buffer): Promise<void> {
    return this.inner.readInto(offset, target).catch((err: unknown) => corrupt(err, offset, target.length));
  }

  override close(): Promise<void> {
    this.closing ??= this.inner.close().then(this.release);
    return this.closing;
  }
}

/** Rethrows `err`, as STORE_CORRUPT when it is an EIO from the file read. */
function corrupt(err: unknown, offset: number, length: number): never {
  if (isDisklessError(err, 'STORE_IO') && err.data['errno'] === 'EIO') {
    throw new DisklessError('STORE_CORRUPT', `cannot read ${length} bytes at offset ${offset} of volume ${String(err.data['volume'])}: ZFS found no good copy (EIO: checksum failure)`, { ...err.data, offset, length }, { cause: err });
  }
  throw err;
}

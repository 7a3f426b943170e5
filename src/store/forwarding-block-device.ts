import type { AllocationExtent, BlockDevice, BlockDeviceCapabilities } from './block-device.js';

/**
 * A BlockDevice that passes every call to `inner`: the base of devices that change a few
 * calls of another (the zfs driver's volume over its file device; fault injection in tests).
 */
export class ForwardingBlockDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: BlockDeviceCapabilities;

  constructor(protected readonly inner: BlockDevice) {
    this.size = inner.size;
    this.blockSize = inner.blockSize;
    this.readOnly = inner.readOnly;
    this.capabilities = inner.capabilities;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length);
  }

  readInto(offset: number, target: Buffer): Promise<void> {
    return this.inner.readInto(offset, target);
  }

  write(offset: number, data: Buffer | readonly Buffer[], options?: { fua?: boolean }): Promise<void> {
    return this.inner.write(offset, data, options);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  unmap(offset: number, length: number): Promise<void> {
    return this.inner.unmap(offset, length);
  }

  allocationStatus(offset: number, length: number, maxExtents: number): Promise<AllocationExtent[]> {
    return this.inner.allocationStatus(offset, length, maxExtents);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

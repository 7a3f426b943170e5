/**
 * The block API every protocol target (iSCSI now, AoE later) reads and writes volumes
 * through. One `BlockDevice` is one open volume; the iSCSI target shares one device between
 * all sessions of a target and calls these methods concurrently, so implementations must be
 * safe for overlapping calls (positional I/O, no shared cursor).
 *
 * Offsets and lengths are in bytes and must be multiples of `blockSize` (SCSI works in
 * blocks; the target converts). Out-of-range or unaligned calls throw STORE_OUT_OF_RANGE;
 * writes to a read-only device throw STORE_READ_ONLY; calls after `close()` throw
 * STORE_CLOSED; operating-system failures throw STORE_IO (retryable).
 *
 * Zero-copy hot path: the target allocates one Buffer per READ command and calls `readInto`
 * so the bytes land where the Data-In PDUs will slice them from; a WRITE hands `write` the
 * list of Data-Out segments exactly as they were received (subarrays of socket chunks), which
 * a file device passes to one positional writev.
 */
export interface BlockDevice {
  /** Capacity in bytes; a multiple of `blockSize`. Constant while open. */
  readonly size: number;
  /** Logical block size in bytes (512 or 4096). */
  readonly blockSize: number;
  /** True when opened read-only: write/unmap throw STORE_READ_ONLY. */
  readonly readOnly: boolean;
  /** What this device can do beyond read/write/flush; the SCSI layer advertises only these. */
  readonly capabilities: BlockDeviceCapabilities;

  /** Reads `length` bytes at `offset` into a new Buffer. Convenience over `readInto`. */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Fills all of `target` with the bytes at `offset` (target.length bytes). Holes in sparse
   * volumes read as zeros. Resolves only when every byte is in place.
   */
  readInto(offset: number, target: Buffer): Promise<void>;
  /**
   * Writes `data` (one buffer, or several written back to back) at `offset`. Resolves when the
   * bytes are in the device's volatile cache: durable only after `flush()` (or when the caller
   * asked for `{ fua: true }`, which flushes before resolving).
   */
  write(offset: number, data: Buffer | readonly Buffer[], options?: { fua?: boolean }): Promise<void>;
  /** Makes every write that resolved before this call durable (fdatasync for files). */
  flush(): Promise<void>;
  /**
   * Tells the device the range is no longer needed; later reads return zeros. Only when
   * `capabilities.unmap` is true; otherwise throws STORE_UNSUPPORTED.
   */
  unmap(offset: number, length: number): Promise<void>;
  /**
   * Provisioning state from `offset` (SCSI GET LBA STATUS): consecutive extents in order, the
   * first starting at `offset`, covering [offset, offset + length) unless `maxExtents` (>= 1)
   * stops the list earlier. Extents are whole blocks; neighbours differ in state. Only when
   * `capabilities.unmap` is true; otherwise throws STORE_UNSUPPORTED.
   */
  allocationStatus(offset: number, length: number, maxExtents: number): Promise<AllocationExtent[]>;
  /** Releases the handle. Waits for nothing in flight; idempotent. */
  close(): Promise<void>;
}

/** Optional features of one open device. */
export interface BlockDeviceCapabilities {
  /** `unmap` frees space and later reads return zeros (SCSI: LBPME/LBPRZ, UNMAP, WRITE SAME UNMAP). */
  readonly unmap: boolean;
  /** Writes sit in a volatile cache until `flush` (SCSI: caching mode page WCE=1, SYNCHRONIZE CACHE needed). */
  readonly volatileWriteCache: boolean;
}

/** A run of blocks sharing one provisioning state. */
export interface AllocationExtent {
  /** Bytes from the start of the device, a multiple of the block size. */
  readonly offset: number;
  /** Bytes, a positive multiple of the block size. */
  readonly length: number;
  /** True: backed by storage (mapped). False: deallocated, reads as zeros. */
  readonly mapped: boolean;
}

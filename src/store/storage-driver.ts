import type { BlockDevice } from './block-device.js';

/** What `list` and `info` say about one volume. */
export interface VolumeInfo {
  readonly name: string;
  /** Capacity in bytes. */
  readonly size: number;
  readonly blockSize: number;
  /** Bytes the volume really occupies on the backing store (sparse files: allocated blocks). */
  readonly allocated: number;
  /** ISO 8601 creation time. */
  readonly createdAt: string;
  /** Where the first contents came from: empty, or the path of an imported image. */
  readonly origin: VolumeOrigin;
}

export type VolumeOrigin = { readonly kind: 'empty' } | { readonly kind: 'import'; readonly path: string };

/** Arguments of `StorageDriver.create`. */
export interface CreateVolumeOptions {
  /**
   * Capacity in bytes, a multiple of `blockSize`. Optional with `from`: the source's size
   * rounded up to a block. With `from`, must be >= the source's size (the rest reads zeros).
   */
  readonly size?: number;
  /** Logical block size: 512 (default) or 4096. */
  readonly blockSize?: 512 | 4096;
  /** Path of a raw disk image to copy in (sparse regions stay sparse where the OS allows). */
  readonly from?: string;
}

/** Arguments of `StorageDriver.open`. */
export interface OpenVolumeOptions {
  /** Open without write access; the device's writes throw STORE_READ_ONLY. */
  readonly readOnly?: boolean;
}

/** Which optional operations a driver implements; the rest throw STORE_UNSUPPORTED. */
export interface StorageDriverCapabilities {
  readonly snapshots: boolean;
  readonly clones: boolean;
  readonly rollback: boolean;
  readonly sendReceive: boolean;
  readonly scrub: boolean;
  readonly unmap: boolean;
}

/** Result of a scrub: every extent re-read and checked against its checksum. */
export interface ScrubReport {
  readonly volume: string;
  readonly bytesChecked: number;
  readonly errors: number;
}

/**
 * The storage engine behind every target: volumes (create/list/open/destroy), and for
 * drivers that can, snapshots, clones, rollback, send/receive streams and scrub. One
 * conformance suite runs against every driver. Contract for all methods:
 *   - names are checked first (STORE_INVALID_NAME);
 *   - create/destroy are atomic: a crash leaves the volume fully there or not at all;
 *   - create of an existing name throws STORE_EXISTS; open/info/destroy of a missing one
 *     STORE_NOT_FOUND; destroy is not idempotent on purpose (a typo must not look like success);
 *   - an operation the driver lacks throws STORE_UNSUPPORTED (never a silent no-op), and
 *     `capabilities` says which those are before anyone calls them;
 *   - OS failures surface as STORE_IO (retryable).
 * Opening is cheap (an fd), callers may open the same volume several times; destroying an
 * open volume is the caller's mistake (the file driver lets open handles keep the data).
 */
export interface StorageDriver {
  /** Driver name as configured ("file", later "embedded", "zfs"). */
  readonly name: string;
  readonly capabilities: StorageDriverCapabilities;

  create(name: string, options: CreateVolumeOptions): Promise<VolumeInfo>;
  /** Every volume, sorted by name. */
  list(): Promise<VolumeInfo[]>;
  exists(name: string): Promise<boolean>;
  info(name: string): Promise<VolumeInfo>;
  open(name: string, options?: OpenVolumeOptions): Promise<BlockDevice>;
  destroy(name: string): Promise<void>;

  /** Point-in-time, read-only image of `volume` named `snapshot` (capabilities.snapshots). */
  snapshot(volume: string, snapshot: string): Promise<void>;
  /** New writable volume `name` sharing the snapshot's blocks, in constant time (capabilities.clones). */
  clone(volume: string, snapshot: string, name: string): Promise<VolumeInfo>;
  /** Discards every change made to `volume` since `snapshot` (capabilities.rollback). */
  rollback(volume: string, snapshot: string): Promise<void>;
  /** Serialises a snapshot (incrementally from `base` when given) as a byte stream (capabilities.sendReceive). */
  send(volume: string, snapshot: string, base?: string): AsyncIterable<Buffer>;
  /** Creates volume `name` from a `send` stream (capabilities.sendReceive). */
  receive(name: string, stream: AsyncIterable<Buffer>): Promise<VolumeInfo>;
  /** Re-reads and verifies every extent of `volume` (capabilities.scrub). */
  scrub(volume: string): Promise<ScrubReport>;
}

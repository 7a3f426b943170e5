import type { BlockDevice } from './block-device.js';

/**
 * What `list` and `info` say about one volume. Space figures follow `zfs list`:
 *   - `referenced`: bytes of data the volume's current contents point at (shared or not);
 *   - `used`: bytes that destroying the volume and all its snapshots would free (its own
 *     blocks plus those only its snapshots still hold; blocks a clone shares with its origin
 *     are charged to the origin);
 *   - `written`: bytes written since the volume's latest snapshot (all of `referenced` when it
 *     has none).
 */
export interface VolumeInfo {
  readonly name: string;
  /** Capacity in bytes. */
  readonly size: number;
  readonly blockSize: number;
  readonly used: number;
  readonly referenced: number;
  readonly written: number;
  /** ISO 8601 creation time. */
  readonly createdAt: string;
  /** Where the first contents came from. */
  readonly origin: VolumeOrigin;
}

export type VolumeOrigin =
  | { readonly kind: 'empty' }
  | { readonly kind: 'import'; readonly path: string }
  /** A clone of `volume@snapshot` (after a promote, the roles swap as in `zfs promote`). */
  | { readonly kind: 'clone'; readonly volume: string; readonly snapshot: string }
  /** Created by `receive` from a full stream. */
  | { readonly kind: 'receive' };

/** What `listSnapshots` says about one snapshot (`zfs list -t snapshot`). */
export interface SnapshotInfo {
  readonly volume: string;
  readonly name: string;
  /** ISO 8601 creation time. */
  readonly createdAt: string;
  /** Bytes only this snapshot holds: what destroying it alone would free. */
  readonly used: number;
  /** Bytes of data the snapshot's contents point at. */
  readonly referenced: number;
  /** Bytes written between the previous snapshot (or the origin) and this one. */
  readonly written: number;
  /** Stable identity that survives send/receive (ZFS `guid`): a received snapshot keeps its sender's guid, so incremental streams can find their base. */
  readonly guid: string;
  /** Volumes cloned from this snapshot, sorted. */
  readonly clones: readonly string[];
  /** Hold tags (`zfs hold`): a held snapshot cannot be destroyed. Sorted. */
  readonly holds: readonly string[];
}

/** Arguments of `StorageDriver.create`. */
export interface CreateVolumeOptions {
  /**
   * Capacity in bytes, a multiple of `blockSize`. Optional with `from`: the source's size
   * rounded up to a block. With `from`, must be >= the source's size (the rest reads zeros).
   */
  readonly size?: number;
  /** Logical block size: 512 (default) or 4096. */
  readonly blockSize?: 512 | 4096;
  /** Path of a raw disk image to copy in (all-zero regions stay unallocated). */
  readonly from?: string;
}

/** Arguments of `StorageDriver.open`. */
export interface OpenVolumeOptions {
  /** Open without write access; the device's writes throw STORE_READ_ONLY. Snapshots always open read-only. */
  readonly readOnly?: boolean;
}

/** Arguments of `StorageDriver.send`. */
export interface SendOptions {
  /** Incremental from this earlier snapshot of the same volume (`zfs send -i`): only blocks written after it. */
  readonly base?: string;
  /** Resume an interrupted transfer from the token `receiveResumeToken` gave on the receiving side (`zfs send -t`). */
  readonly resumeToken?: string;
}

/** Arguments of `StorageDriver.receive`. */
export interface ReceiveOptions {
  /**
   * Keep what arrived when the stream stops early, so `receiveResumeToken` can restart it
   * (`zfs receive -s`). Without it an interrupted receive leaves nothing behind.
   */
  readonly resumable?: boolean;
  /** For an incremental stream: discard changes made to the volume since its latest snapshot first (`zfs receive -F`). */
  readonly force?: boolean;
}

/** Which optional operations a driver implements; the rest throw STORE_UNSUPPORTED. */
export interface StorageDriverCapabilities {
  readonly snapshots: boolean;
  readonly clones: boolean;
  readonly rollback: boolean;
  readonly promote: boolean;
  readonly holds: boolean;
  readonly sendReceive: boolean;
  /** Interrupted receives can be resumed (`zfs receive -s`; zfs-fuse's pool version 23 cannot). */
  readonly resumableReceive: boolean;
  readonly scrub: boolean;
  readonly unmap: boolean;
}

/** Result of a scrub: every block re-read and checked against its checksum, bad copies healed. */
export interface ScrubReport {
  /** The volume scrubbed, or undefined for the whole pool. */
  readonly volume: string | undefined;
  readonly bytesChecked: number;
  /** Bad copies found (a block whose checksum did not match on one disk). */
  readonly errors: number;
  /** Bad copies rewritten from a good one. */
  readonly repaired: number;
  /** Blocks with no good copy left: reading them fails with STORE_CORRUPT. */
  readonly unrecoverable: number;
}

/**
 * The storage engine behind every target: volumes (create/list/open/destroy), and for
 * drivers that can, snapshots, clones, rollback, promote, holds, send/receive streams and
 * scrub, with ZFS semantics. One conformance suite (test/store/conformance) runs against
 * every driver. Contract for all methods:
 *   - names are checked first (STORE_INVALID_NAME); a snapshot is addressed as (volume, name);
 *   - every change is atomic: a crash leaves it fully done or not at all;
 *   - create/clone/receive of an existing name throws STORE_EXISTS; anything naming a missing
 *     volume or snapshot STORE_NOT_FOUND; destroy is not idempotent on purpose;
 *   - dependency rules as in ZFS: a volume with snapshots, a snapshot with clones, and a held
 *     snapshot cannot be destroyed (STORE_HAS_DEPENDENTS, STORE_HELD); rollback past later
 *     snapshots needs `destroyLater` (`zfs rollback -r`);
 *   - an operation the driver lacks throws STORE_UNSUPPORTED (never a silent no-op), and
 *     `capabilities` says which those are before anyone calls them;
 *   - OS failures surface as STORE_IO (retryable), a full pool as STORE_NO_SPACE, data that
 *     fails its checksum with no good copy as STORE_CORRUPT (never wrong bytes).
 */
export interface StorageDriver {
  /** Driver name as configured ("file", "embedded", "zfs"). */
  readonly name: string;
  readonly capabilities: StorageDriverCapabilities;

  create(name: string, options: CreateVolumeOptions): Promise<VolumeInfo>;
  /** Every volume, sorted by name. */
  list(): Promise<VolumeInfo[]>;
  exists(name: string): Promise<boolean>;
  info(name: string): Promise<VolumeInfo>;
  /** Opens a volume, or with `snapshot` one of its snapshots (always read-only). */
  open(name: string, options?: OpenVolumeOptions & { readonly snapshot?: string }): Promise<BlockDevice>;
  /**
   * Destroys a volume. With snapshots it throws STORE_HAS_DEPENDENTS unless `recursive`
   * (`zfs destroy -r`), which destroys them too but still refuses held or cloned ones.
   */
  destroy(name: string, options?: { readonly recursive?: boolean }): Promise<void>;

  /** Snapshots of `volume` in creation order, or of every volume (sorted by volume, then creation). */
  listSnapshots(volume?: string): Promise<SnapshotInfo[]>;
  /** Point-in-time, read-only image of `volume` named `snapshot`, in constant time. */
  snapshot(volume: string, snapshot: string): Promise<SnapshotInfo>;
  /** Destroys one snapshot: STORE_HAS_DEPENDENTS with clones, STORE_HELD with holds. */
  destroySnapshot(volume: string, snapshot: string): Promise<void>;
  /** New writable volume `name` sharing the snapshot's blocks, in constant time. */
  clone(volume: string, snapshot: string, name: string): Promise<VolumeInfo>;
  /**
   * Discards every change made to `volume` since `snapshot`. When later snapshots exist it
   * throws STORE_HAS_DEPENDENTS unless `destroyLater` (then they are destroyed, and it still
   * refuses if one of them has clones or holds).
   */
  rollback(volume: string, snapshot: string, options?: { readonly destroyLater?: boolean }): Promise<void>;
  /** Makes clone `volume` independent of its origin (`zfs promote`): the origin's snapshots up to the clone point move to it. */
  promote(volume: string): Promise<void>;
  /** Adds hold `tag` to a snapshot (`zfs hold`); a second hold with the same tag throws STORE_EXISTS. */
  hold(volume: string, snapshot: string, tag: string): Promise<void>;
  /** Removes hold `tag` (`zfs release`); STORE_NOT_FOUND when there is no such hold. */
  release(volume: string, snapshot: string, tag: string): Promise<void>;

  /** Serialises a snapshot (incrementally from `options.base`) as a byte stream, checksummed. */
  send(volume: string, snapshot: string, options?: SendOptions): AsyncIterable<Buffer>;
  /**
   * Applies a `send` stream: a full stream creates volume `name` with the snapshot; an
   * incremental one adds the snapshot to existing volume `name`, whose latest snapshot must be
   * the stream's base. A corrupt or truncated stream is rejected whole (STORE_STREAM_INVALID,
   * or STORE_RECEIVE_INTERRUPTED carrying `details.resumeToken` when `resumable`) and the
   * existing volume is untouched. Resolves with the received snapshot.
   */
  receive(name: string, stream: AsyncIterable<Buffer>, options?: ReceiveOptions): Promise<SnapshotInfo>;
  /** The token to resume an interrupted resumable receive into `name`, or undefined when none is pending. */
  receiveResumeToken(name: string): Promise<string | undefined>;
  /** Throws away a pending partial receive into `name` (`zfs receive -A`). */
  abortReceive(name: string): Promise<void>;
  /** Re-reads every block of `volume` (or the whole pool) against its checksum and heals bad copies. */
  scrub(volume?: string): Promise<ScrubReport>;

  /** Releases the driver's resources (metadata database, pool lock). Open devices must be closed first. */
  close(): Promise<void>;
}

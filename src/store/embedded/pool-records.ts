import type { ExtentEntry } from './extent-entry.js';
import type { ExtentMap } from './extent-map.js';

/** Format name and version of the embedded pool's metadata (docs/store-format.md, "On-disk format"). */
export const POOL_FORMAT = 'diskless-embedded-pool';
export const POOL_FORMAT_VERSION = 2;

/** The `pool` record: one per pool. */
export interface PoolRecord {
  readonly format: typeof POOL_FORMAT;
  readonly version: number;
  /** Random 64-bit id, hex; the mirror directory's `POOL` file names it too. */
  readonly guid: string;
  /** Bytes per extent: the copy-on-write and allocation unit, a power of two from 4 KiB to 128 KiB. */
  readonly extentSize: number;
  readonly createdAt: string;
  /** Whether the pool was created with a mirror directory. */
  readonly mirror: boolean;
  /** Slots [0, nextSlot) of the data file have been handed out at some point; the rest are free. */
  nextSlot: number;
  /** The transaction group that the next commit closes. */
  txg: number;
  nextLayerId: number;
}

/**
 * A layer: the extents one volume wrote during one interval. The volume's head layer takes
 * writes; a snapshot freezes the head (it gets a snapshot name) and puts a new empty head on
 * top; a clone is a new head whose parent is another volume's snapshot layer. Reading walks
 * from a layer down through its parents; the first entry found wins.
 */
export interface LayerRecord {
  readonly id: number;
  /** Layer below (0: none). */
  parent: number;
  /** Volume this layer belongs to (changes on promote). */
  owner: string;
  /** Snapshot name, or null for a head. */
  snapshot: string | null;
  createdAt: string;
  /** Snapshot identity, 16 hex digits; kept across send/receive. */
  guid: string;
  /** Data entries this layer owns (slots it would free if destroyed). */
  dataExtents: number;
  /** Of this layer's data entries, those the next layer up in the same volume overrides (what destroying this snapshot alone frees). */
  shadowed: number;
  /** Extents with data in the view from this layer down. */
  referencedExtents: number;
  /** Hold tags, sorted. */
  holds: string[];
}

/** Base origin of a volume's contents (a clone's origin is read from its layer chain instead). */
export type BaseOrigin = { readonly kind: 'empty' } | { readonly kind: 'import'; readonly path: string } | { readonly kind: 'receive' };

/** Pending resumable receive into a volume (see receive). */
export interface PartialReceive {
  /** Layer the stream is being written into: the hidden volume's head for a full stream (`hidden: 'receive'`), else a layer on the latest snapshot. */
  readonly layer: number;
  /** Kept after an interruption (receive -s); otherwise dropped when the pool opens. */
  readonly resumable: boolean;
  /** Resume token of the last checkpoint (send-stream resume-token.ts), once there is one. */
  token?: string;
}

/** A volume record. */
export interface VolumeRecord {
  readonly name: string;
  readonly size: number;
  readonly blockSize: number;
  readonly createdAt: string;
  origin: BaseOrigin;
  /** The head layer (takes writes). */
  head: number;
  /**
   * Set while the volume is being filled by an import or a full receive: it is not listed and
   * cannot be opened. A crash leaves an import half done: the pool drops such volumes when it
   * opens. A resumable receive keeps its partial volume (see `receiving`).
   */
  hidden?: 'import' | 'receive';
  /** Present while a resumable receive is pending into this volume. */
  receiving?: PartialReceive;
}

/** An entry and the layer that holds it. */
export interface Hit {
  readonly layer: Layer;
  readonly entry: ExtentEntry;
}

/** A layer in memory: its record and, once loaded, its entries by extent index. */
export class Layer {
  /** True once destroyed: readers holding it re-resolve. */
  removed = false;
  constructor(
    public record: LayerRecord,
    public entries: ExtentMap | undefined,
  ) {}

  get id(): number {
    return this.record.id;
  }
}

/**
 * Reusable buffers for READ data. A READ needs one buffer of its transfer length, which lives
 * until the socket has written the Data-In PDUs sliced from it. Allocating a fresh one per
 * command made V8 run a full mark-compact every ~30 ms at 1.5 GB/s of 128 KiB reads (each
 * buffer is external memory, and external growth forces old-space GCs): 27% of the JS thread
 * (bench:iscsi, docs/iscsi.md). This pool hands out buffers of power-of-two size classes from
 * 4 KiB to 1 MiB and takes them back once the connection's socket reports them written.
 *
 * Safety: only buffers this pool lent are taken back, each at most once (a WeakSet of lent
 * ArrayBuffers), so a foreign buffer or a double release is ignored. A buffer never released
 * (an aborted task, a closed socket) is simply garbage collected. The caller must not touch a
 * buffer after releasing it. One pool per server (IscsiServer); not shared between servers.
 */

/** Smallest and largest pooled size; larger reads get a buffer of their own. */
const MIN_CLASS = 4096;
const MAX_CLASS = 1024 * 1024;

/** What LogicalUnit needs: a buffer of exactly `bytes` for a READ (contents undefined). */
export interface ReadBufferSource {
  acquire(bytes: number): Buffer;
}

export interface ReadBufferPoolOptions {
  /** Free bytes kept for reuse at most, over all size classes (default 16 MiB). */
  readonly maxFreeBytes?: number;
}

export class ReadBufferPool implements ReadBufferSource {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly lent = new WeakSet<ArrayBuffer>();
  private freeBytes = 0;
  private readonly maxFreeBytes: number;
  /** Counts, for tests and the bench: buffers reused, newly allocated, and released. */
  readonly stats = { reused: 0, allocated: 0, released: 0 };

  constructor(options: ReadBufferPoolOptions = {}) {
    this.maxFreeBytes = options.maxFreeBytes ?? 16 * 1024 * 1024;
  }

  /** A buffer of `bytes` (uninitialised): pooled up to 1 MiB, plain allocation above. Called once per READ. */
  acquire(bytes: number): Buffer {
    if (bytes > MAX_CLASS) return Buffer.allocUnsafe(bytes);
    const size = classOf(bytes);
    const ab = this.free.get(size)?.pop();
    if (ab) {
      this.freeBytes -= size;
      this.stats.reused++;
      this.lent.add(ab);
      return Buffer.from(ab, 0, bytes);
    }
    this.stats.allocated++;
    const fresh = Buffer.allocUnsafeSlow(size);
    this.lent.add(fresh.buffer as ArrayBuffer);
    return fresh.subarray(0, bytes);
  }

  /** Takes back a buffer from `acquire` once nothing refers to its bytes any more; anything else is ignored. */
  release(buf: Buffer): void {
    const ab = buf.buffer as ArrayBuffer;
    if (!this.lent.has(ab)) return;
    this.lent.delete(ab);
    this.stats.released++;
    const size = ab.byteLength;
    if (this.freeBytes + size > this.maxFreeBytes) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(ab);
    this.freeBytes += size;
  }
}

/** The power-of-two size class holding `bytes` (at least MIN_CLASS). */
function classOf(bytes: number): number {
  let size = MIN_CLASS;
  while (size < bytes) size *= 2;
  return size;
}

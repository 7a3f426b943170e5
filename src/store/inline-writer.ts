import { writevSync } from 'node:fs';

/**
 * Inline writes: page size, largest inline write; a write slower than STALL_MS, or SLOW_COUNT
 * writes slower than SLOW_MS within WINDOW_MS, send writes to the thread pool for BACKOFF_MS.
 * (A single 2-3 ms write is a preempted thread on a busy machine, not throttling: backing off
 * on one halved the 64 KiB write figure.)
 */
const PAGE = 4096;
const MAX_BYTES = 1024 * 1024;
const SLOW_MS = 5;
const STALL_MS = 20;
const SLOW_COUNT = 3;
const WINDOW_MS = 1000;
const BACKOFF_MS = 1000;

/**
 * Writes whole, page-aligned ranges of at most 1 MiB on the JS thread (pwritev into the page
 * cache) instead of a thread-pool round trip, for the file and embedded block devices.
 * Buffered writes cannot be made non-blocking on ext4 (pwritev2 RWF_NOWAIT: EOPNOTSUPP), so
 * this guards by measurement instead: aligned full pages never read the disk, and writes that
 * still take long (dirty page throttling under sustained writes: one over STALL_MS or a few
 * over SLOW_MS) send every write through the thread pool for the next BACKOFF_MS, so such
 * stalls stay rare. Measured (bench:iscsi, docs/iscsi.md): 4 KiB qd32 writes 34-41k ->
 * 44-74k IOPS, 64 KiB 280-480 -> 800-1040 MB/s, at half the CPU.
 */
export class InlineWriter {
  /** performance.now() before which writes go through the thread pool. */
  private inlineAfter = 0;
  private slowWrites = 0;
  private slowSince = 0;

  /** Bytes written (0 when it did not try or the write failed: the caller's pool write then does it and reports errors). */
  write(fd: number, bufs: readonly Buffer[], position: number, length: number): number {
    if (length > MAX_BYTES || position % PAGE !== 0 || length % PAGE !== 0) return 0;
    const now = performance.now();
    if (now < this.inlineAfter) return 0;
    let n = 0;
    try {
      n = writevSync(fd, bufs as Buffer[], position);
    } catch {
      n = 0;
    }
    const end = performance.now();
    const took = end - now;
    if (took > SLOW_MS) {
      if (end - this.slowSince > WINDOW_MS) {
        this.slowSince = end;
        this.slowWrites = 0;
      }
      this.slowWrites++;
      if (took > STALL_MS || this.slowWrites >= SLOW_COUNT) {
        this.inlineAfter = end + BACKOFF_MS;
        this.slowWrites = 0;
      }
    }
    return n;
  }
}

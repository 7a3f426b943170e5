/**
 * Block allocation of regular files through the native addon (native/block_alloc.c): punch a
 * hole (fallocate FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) and find data and holes
 * (lseek SEEK_DATA / SEEK_HOLE). Node's fs has neither; thin-provisioned file volumes need
 * both (SCSI UNMAP frees blocks, GET LBA STATUS reports which are mapped).
 */
import { loadNativeAddon } from '../../net/native-addon.js';

/** The native functions (see native/block_alloc.c for the exact contract). */
export interface BlockAllocation {
  /** Frees [offset, offset + length) on a thread-pool thread; the range reads as zeros afterwards. Rejects with an errno-coded Error (EOPNOTSUPP...). */
  punchHole(fd: number, offset: number, length: number): Promise<void>;
  /** Reserves the file system's blocks for [offset, offset + length) on a thread-pool thread, size and data unchanged (fallocate FALLOC_FL_KEEP_SIZE). Absent from an addon built before it. */
  preallocate?(fd: number, offset: number, length: number): Promise<void>;
  /** The same on the calling thread: only for probes past the end of the file, which touch no data. */
  punchHoleSync(fd: number, offset: number, length: number): void;
  /** First offset >= `offset` inside allocated data; `NO_MORE` (-1) when only holes remain before the end of the file. */
  seekData(fd: number, offset: number): number;
  /** First offset >= `offset` inside a hole (the end of the file counts as one); `NO_MORE` (-1) at or past the end of the file. */
  seekHole(fd: number, offset: number): number;
}

/** What seekData/seekHole return when the kernel says ENXIO (nothing more before the end of the file). */
export const NO_MORE = -1;

let resolved: BlockAllocation | null | undefined;

/** The addon's functions, resolved once per process; undefined when the addon is missing or predates them. */
export function blockAllocation(): BlockAllocation | undefined {
  if (resolved === undefined) {
    try {
      const addon = loadNativeAddon<Partial<BlockAllocation>>();
      resolved = addon.punchHole && addon.punchHoleSync && addon.seekData && addon.seekHole ? (addon as BlockAllocation) : null;
    } catch {
      resolved = null;
    }
  }
  return resolved ?? undefined;
}

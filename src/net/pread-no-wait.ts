/**
 * A positional read that never waits for the disk (preadv2 with RWF_NOWAIT, native/block_io.c),
 * for block devices that serve files mostly from the page cache. Node's own fs reads always go
 * through the libuv thread pool: for a 4 KiB read that round trip (mutex, waking a worker,
 * async handle back) costs several times the copy itself. Called on every READ command.
 */
import { optionalNative } from './native-addon.js';

/**
 * Reads buffer[start, end) from file offset `position` only if it is already cached.
 * Returns bytes read (0 at end of file; short when only the first pages are cached),
 * `NOT_CACHED` (-1: read it the usual way), or `UNSUPPORTED` (-2: the file system refuses
 * RWF_NOWAIT; stop trying on this file). Throws an Error with an errno `code` otherwise.
 */
export type PreadNoWait = (fd: number, buffer: Buffer, start: number, end: number, position: number) => number;

export const NOT_CACHED = -1;
export const UNSUPPORTED = -2;

/** The native function, resolved once per process; undefined without the addon. */
export function preadNoWait(): PreadNoWait | undefined {
  return optionalNative<PreadNoWait>('preadNoWait');
}

/**
 * How much of `target` (from its start) the page cache holds at file `position`, copied in
 * with `pread` on this thread: bytes done (0..target.length; short at a miss or end of file),
 * or UNSUPPORTED when the file system refuses RWF_NOWAIT (the caller stops trying on that
 * file). An I/O error counts as "not cached": the caller's ordinary read reports it.
 */
export function cachedPrefix(pread: PreadNoWait, fd: number, target: Buffer, position: number): number {
  let done = 0;
  try {
    while (done < target.length) {
      const n = pread(fd, target, done, target.length, position + done);
      if (n === UNSUPPORTED) return done === 0 ? UNSUPPORTED : done;
      if (n <= 0) break;
      done += n;
    }
  } catch {
    /* reported by the ordinary read */
  }
  return done;
}

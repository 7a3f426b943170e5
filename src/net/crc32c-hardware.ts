/**
 * The hardware CRC32C register update (x86 SSE4.2 crc32 instruction, native/crc32c.c) for
 * `new Crc32c(hardwareCrc32c())`. Undefined when the addon is not built or the CPU lacks
 * SSE4.2: Crc32c then uses its tables, which give the same digests ~10-20x slower.
 */
import type { Crc32cUpdate } from '../wire/checksum/crc32c.js';
import { optionalNative } from './native-addon.js';

let wrapped: Crc32cUpdate | undefined;

/** The native update, resolved once per process; undefined when unavailable. */
export function hardwareCrc32c(): Crc32cUpdate | undefined {
  const fn = optionalNative<(crc: number, buf: Buffer) => number>('crc32cUpdate');
  return fn && (wrapped ??= (crc, buf) => fn(crc >>> 0, buf));
}

const units: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * "64MiB", "10G", "512", 4096 → bytes. Binary units (K = 1024) whether or not the `i` is
 * written, as qemu-img and zfs read them. Throws a RangeError on anything else.
 */
export function parseSize(size: string | number): number {
  if (typeof size === 'number') {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`size ${size} is not a non-negative integer`);
    return size;
  }
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(size.trim());
  if (!m) throw new RangeError(`size ${JSON.stringify(size)} is not a number with an optional K, M, G or T unit`);
  const bytes = Math.round(Number(m[1]) * units[m[2]!.toUpperCase()]!);
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`size ${size} is too large`);
  return bytes;
}

/**
 * RFC 1071 Internet checksum, shared by IPv4 (header), UDP and ICMPv6 (with their pseudo
 * headers). Hot path for DHCP and RA frames: one pass over the bytes, no allocation.
 */

/**
 * One's-complement sum of `data` (big-endian 16-bit words, an odd last byte padded with zero)
 * added to `initial`, folded to 16 bits but not inverted: chain calls to cover a pseudo header
 * and a payload. The fold uses division, not `>>>`, so sums past 2^32 stay exact.
 */
export function onesComplementSum(data: Buffer, initial = 0): number {
  let sum = initial;
  const even = data.length & ~1;
  for (let i = 0; i < even; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (data.length & 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * The checksum field value: the one's complement of `onesComplementSum(buf, sum)`. Over data
 * that already holds a correct checksum it yields 0, which is how receivers verify.
 */
export function internetChecksum(buf: Buffer, sum = 0): number {
  return ~onesComplementSum(buf, sum) & 0xffff;
}

/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the iSCSI header and data digest
 * (RFC 7143 §11.2.3, RFC 3385), also the per-record checksum of send streams
 * (src/wire/send-stream). Slicing-by-4 tables built once per `Crc32c` instance; pure.
 * A faster register update (the SSE4.2 crc32 instruction through the native addon,
 * src/net/crc32c-hardware.ts) can be injected; both give the same values.
 */

/** Feeds `buf` to a pre-inverted CRC32C register and returns the new register (unsigned). */
export type Crc32cUpdate = (crc: number, buf: Buffer) => number;
const POLY = 0x82f63b78;

function buildTables(): Uint32Array[] {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  const tables = [t0];
  for (let t = 1; t < 4; t++) {
    const prev = tables[t - 1]!;
    const cur = new Uint32Array(256);
    for (let n = 0; n < 256; n++) cur[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!;
    tables.push(cur);
  }
  return tables;
}

/** The digest function; build one and share it (the tables are 4 KiB). */
export class Crc32c {
  private readonly t: Uint32Array[] = buildTables();
  private readonly fast: Crc32cUpdate | undefined;

  /** `accelerated`: a register update to use instead of the tables (same results). */
  constructor(accelerated?: Crc32cUpdate) {
    this.fast = accelerated;
  }

  /** True when the injected update is used. */
  get accelerated(): boolean {
    return this.fast !== undefined;
  }

  /** CRC32C of the concatenation of `parts` (the value; `writeDigest` puts it on the wire). */
  of(...parts: Buffer[]): number {
    let crc = 0xffffffff;
    const f = this.fast;
    for (const p of parts) if (p.length) crc = f ? f(crc, p) : this.update(crc, p);
    return (crc ^ 0xffffffff) >>> 0;
  }

  /** The table version of the register update (also the reference in tests and benchmarks). */
  update(crc: number, buf: Buffer): number {
    const [t0, t1, t2, t3] = this.t as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];
    let i = 0;
    const n4 = buf.length & ~3;
    for (; i < n4; i += 4) {
      crc ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
      crc = t3[crc & 0xff]! ^ t2[(crc >>> 8) & 0xff]! ^ t1[(crc >>> 16) & 0xff]! ^ t0[crc >>> 24]!;
    }
    for (; i < buf.length; i++) crc = t0[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
    return crc >>> 0;
  }
}

/**
 * The digest goes on the wire least-significant byte first: RFC 3720 Appendix B.4 gives the
 * CRC of 32 zero bytes as the byte sequence aa 36 91 8a, i.e. 0x8a9136aa little-endian.
 */
export function writeDigest(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

/** Reads a digest field written by `writeDigest`. */
export function readDigest(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset);
}

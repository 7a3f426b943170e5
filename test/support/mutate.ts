/**
 * Corpus-mutation fuzzing for the wire codecs (jazzer.js does not run on Debian 12's glibc).
 * `fuzzDecoder` feeds `count` inputs to `decode`: byte flips, truncations, extensions,
 * splices and random lengths written over length fields of real captured packets, plus pure
 * random buffers. The decoder must either return or throw a DisklessError; any other
 * exception (TypeError, RangeError from Buffer reads...) is a bug and fails the test with the
 * input in hex. Deterministic: seeded PRNG, so a failure replays.
 */
import { isDisklessError } from '../../src/errors/index.js';

export interface FuzzResult {
  readonly inputs: number;
  readonly accepted: number;
  readonly rejected: number;
}

/** Small, fast, seedable PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One mutation of `seed` chosen by `rand`. Never returns the same Buffer object. */
export function mutate(seed: Buffer, rand: () => number, corpus: readonly Buffer[] = []): Buffer {
  const int = (n: number) => Math.floor(rand() * n);
  const buf = Buffer.from(seed);
  switch (int(8)) {
    case 0: {
      // flip 1-8 random bits
      const n = 1 + int(8);
      for (let i = 0; i < n && buf.length; i++) buf[int(buf.length)]! ^= 1 << int(8);
      return buf;
    }
    case 1:
      return buf.subarray(0, int(buf.length + 1)); // truncate
    case 2: {
      // interesting byte values at a random offset (lengths, type codes)
      const vals = [0, 1, 0x7f, 0x80, 0xff, 0xfe, 2, 4, 8, 16, 255, 64];
      if (buf.length) buf[int(buf.length)] = vals[int(vals.length)]!;
      return buf;
    }
    case 3: {
      // random 16/32-bit big-endian value
      if (buf.length >= 4) {
        const off = int(buf.length - 3);
        if (rand() < 0.5) buf.writeUInt16BE(int(0x10000), off);
        else buf.writeUInt32BE(int(0x100000000), off);
      }
      return buf;
    }
    case 4: {
      // append random bytes
      const extra = Buffer.alloc(1 + int(64));
      for (let i = 0; i < extra.length; i++) extra[i] = int(256);
      return Buffer.concat([buf, extra]);
    }
    case 5: {
      // splice with another corpus entry
      const other = corpus.length ? corpus[int(corpus.length)]! : buf;
      const cut = int(buf.length + 1);
      return Buffer.concat([buf.subarray(0, cut), other.subarray(int(other.length + 1))]);
    }
    case 6: {
      // duplicate or delete a range
      if (buf.length < 2) return buf;
      const a = int(buf.length);
      const b = a + int(buf.length - a);
      return rand() < 0.5 ? Buffer.concat([buf.subarray(0, b), buf.subarray(a)]) : Buffer.concat([buf.subarray(0, a), buf.subarray(b)]);
    }
    default: {
      // pure random buffer of random length
      const out = Buffer.alloc(int(600));
      for (let i = 0; i < out.length; i++) out[i] = int(256);
      return out;
    }
  }
}

/**
 * Runs the fuzz loop. `decode` may return anything; it must throw only DisklessErrors.
 * Stacks mutations (1-4 rounds) so deep fields get reached.
 */
export function fuzzDecoder(decode: (input: Buffer) => unknown, corpus: readonly Buffer[], count: number, seed = 0x5eed): FuzzResult {
  const rand = prng(seed);
  let accepted = 0;
  let rejected = 0;
  for (let i = 0; i < count; i++) {
    let input = corpus.length ? corpus[Math.floor(rand() * corpus.length)]! : Buffer.alloc(0);
    const rounds = 1 + Math.floor(rand() * 4);
    for (let r = 0; r < rounds; r++) input = mutate(input, rand, corpus);
    try {
      decode(input);
      accepted++;
    } catch (err) {
      if (!isDisklessError(err)) {
        throw new Error(`decoder threw a non-DisklessError on input #${i} (seed ${seed}): ${String(err)}\ninput: ${input.toString('hex')}`, { cause: err });
      }
      rejected++;
    }
  }
  return { inputs: count, accepted, rejected };
}

/**
 * CRC32C speed: the table version (src/wire/iscsi/crc32c.ts) against the native update
 * (native/crc32c.c: the SSE4.2 crc32 instruction, VPCLMULQDQ folding from 256 bytes where the CPU
 * has AVX-512; DISKLESS_CRC32C_NO_FOLD=1 measures the crc32 path alone), on 48-byte headers (ns
 * per digest, call overhead included) and 256 KiB data segments (MB/s). Run: `npx tsc -p . && make native && node dist/bench/crc32c.bench.js`.
 */
import { randomBytes } from 'node:crypto';
import { Crc32c } from '../src/wire/checksum/crc32c.js';
import { hardwareCrc32c } from '../src/net/crc32c-hardware.js';

function time(fn: () => void, iterations: number): number {
  for (let i = 0; i < Math.min(iterations, 1000); i++) fn(); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations; // ns per call
}

const header = randomBytes(48);
const segment = randomBytes(256 * 1024);
const rows: string[] = [];
const hw = hardwareCrc32c();
for (const [name, c] of [['table (JS)', new Crc32c()], ['native', hw ? new Crc32c(hw) : null]] as const) {
  if (!c) {
    rows.push(`${name.padEnd(16)} unavailable (addon not built or no SSE4.2)`);
    continue;
  }
  let sink = 0;
  const nsHeader = time(() => (sink ^= c.of(header)), 1_000_000);
  const nsSegment = time(() => (sink ^= c.of(segment)), name.startsWith('table') ? 200 : 5000);
  const mbs = segment.length / nsSegment * 1e3;
  rows.push(`${name.padEnd(16)} ${nsHeader.toFixed(0).padStart(6)} ns / 48-byte header   ${mbs.toFixed(0).padStart(7)} MB/s on 256 KiB   (${sink & 1})`);
}
console.log(rows.join('\n'));

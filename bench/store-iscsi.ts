/**
 * The iscsi section of bench:store (see store.bench.ts): iSCSI throughput on an embedded clone
 * vs the same image as a plain file vs a zfs-fuse clone, each target in its own process.
 */
import { join } from 'node:path';
import { DATA_FILE } from '../src/store/embedded/extent-files.js';
import { EmbeddedStorageDriver } from '../src/store/embedded/embedded-storage-driver.js';
import { cpuSeconds, iscsiPerf, median, qemuBench } from './bench-support.js';
import { BLOCK, closeEmbedded, embedded, execFileP, fmt, GiB, golden, goldenImage, PORT_BASE, serve, stop, zfs, type Context, type Served } from './store-context.js';

export interface Workload {
  readonly name: string;
  readonly label: string;
  readonly bytes: number;
  /** Logical block size of the LUNs it runs on (default 512). */
  readonly lba?: 512 | 4096;
  run(url: string): Promise<number>;
}

/** A target of the section: which column it fills and the logical block size it serves. */
interface Target {
  readonly column: 'embedded' | 'file' | 'zfs';
  readonly lba: 512 | 4096;
  readonly served: Served;
}

export function workloads(seconds: number): Workload[] {
  const stride = 4097 * BLOCK; // odd in 4 KiB units: visits every block of the LUN, scattered
  return [
    { name: 'read128k', label: '128 KiB seq read qd32 (iscsi-perf)', bytes: 131072, run: (u) => iscsiPerf(u, seconds, 256, false) },
    // iscsi-perf -r picks 512-byte-aligned offsets: 7 reads in 8 span two 4 KiB blocks, which
    // the clone reads and verifies whole (8 KiB) while the file copies 4 KiB.
    { name: 'rand4k', label: '4 KiB random read qd32, 512-byte-aligned (iscsi-perf -r)', bytes: 4096, run: (u) => iscsiPerf(u, seconds, 8, true) },
    // What a Linux initiator's page cache and file systems send: 4 KiB-aligned. iscsi-perf has
    // no alignment option, so this pair of LUNs has 4096-byte logical blocks (same data).
    { name: 'rand4k-aligned', label: '4 KiB random read qd32, 4 KiB-aligned (iscsi-perf -r, 4096-byte-block LUNs)', bytes: 4096, lba: 4096, run: (u) => iscsiPerf(u, seconds, 1, true) },
    { name: 'write4k', label: '4 KiB strided write qd32 (qemu-img bench)', bytes: 4096, run: (u) => qemuBench(u, 15_000 * seconds, 32, '4k', stride) },
    { name: 'write64k', label: '64 KiB seq write qd16 (qemu-img bench)', bytes: 65536, run: (u) => qemuBench(u, 2_000 * seconds, 16, '64k') },
  ];
}

export async function iscsiSection(ctx: Context): Promise<void> {
  const emb = await embedded(ctx);
  const eg = await golden(ctx, emb, 'embedded', GiB);
  await emb.clone(eg.name, 'v1', 'lun');
  await closeEmbedded(ctx);
  const lunFile = join(ctx.work, 'lun.img');
  await execFileP('cp', ['--sparse=always', await goldenImage(ctx, GiB), lunFile]);
  const z = await zfs(ctx);
  if (z) {
    const zg = await golden(ctx, z.driver, 'zfs', GiB);
    await z.driver.clone(zg.name, 'v1', 'lun');
  }
  // The same clone and file behind 4096-byte logical blocks (a second pool: a pool is served by one process).
  const pool4k = join(ctx.work, 'pool-4k');
  const d4k = await EmbeddedStorageDriver.open({ pool: pool4k });
  try {
    await d4k.create('golden', { from: await goldenImage(ctx, GiB), blockSize: 4096 });
    await d4k.snapshot('golden', 'v1');
    await d4k.clone('golden', 'v1', 'lun');
  } finally {
    await d4k.close();
  }
  const servers: Target[] = [];
  try {
    servers.push({ column: 'embedded', lba: 512, served: await serve('embedded', ['--pool', ctx.poolDir, 'lun'], PORT_BASE + 1) });
    servers.push({ column: 'file', lba: 512, served: await serve('file', [lunFile], PORT_BASE + 2) });
    if (z) servers.push({ column: 'zfs', lba: 512, served: await serve('zfs', ['--zfs', z.dataset, 'lun'], PORT_BASE + 3) });
    servers.push({ column: 'embedded', lba: 4096, served: await serve('embedded-4k', ['--pool', pool4k, 'lun'], PORT_BASE + 4) });
    servers.push({ column: 'file', lba: 4096, served: await serve('file-4k', [lunFile, '--block-size', '4096'], PORT_BASE + 5) });
    console.log(`\n## iscsi: 1 GiB LUN on loopback: embedded clone of the golden image vs the same image as a plain file vs a zfs-fuse clone; ${ctx.o.runs} run(s) each, alternating, medians; iscsi-perf -t ${ctx.o.seconds}`);
    console.log('| workload | embedded MB/s | file MB/s | zfs-fuse MB/s | embedded / file | zfs / file | server CPU s embedded / file / zfs | first pass: embedded / file, zfs / file |');
    console.log('|---|---|---|---|---|---|---|---|');
    // Every LUN starts from the same page-cache state: the data files behind the local targets
    // (both pools', the plain file) are dropped from the cache (dd iflag=nocache count=0, after
    // sync) and read back whole (dd, so readahead brings them in the same way), then each
    // 512-byte-block LUN is read once through its target. Without the drop, each file kept
    // the pages its creation left (the pool's from import writes, the file's from cp), and
    // pages brought in by readahead made 4 KiB reads ~10% cheaper for either target here
    // (page-cache lookups, xas_load). zfs-fuse's cache is its own ARC: the read through its
    // target is what it gets. (qemu-img 7.2 asserts on a 4096-byte-block iSCSI LUN in its
    // block-status path, so those LUNs get only the dd.)
    for (const f of [join(ctx.poolDir, DATA_FILE), join(pool4k, DATA_FILE), lunFile]) {
      await execFileP('sync', [f]);
      await execFileP('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
      await execFileP('dd', [`if=${f}`, 'of=/dev/null', 'bs=1M', 'status=none']);
    }
    for (const s of servers) {
      if (s.lba === 512) await execFileP('qemu-img', ['bench', '-f', 'raw', '-t', 'none', '-n', '-c', String(GiB / 131072), '-d', '16', '-s', '128k', s.served.url], { timeout: 300_000 });
    }
    let worst = Infinity;
    const failures = new Map<string, string>();
    for (const w of workloads(ctx.o.seconds)) {
      const iops: Record<string, number[]> = {};
      const cpu: Record<string, number[]> = {};
      // One pass of the workload on every target first, shown apart and left out of the
      // medians (like fio's ramp_time): on the clone it is the copy-on-write of blocks it has
      // never written, on the file the first touch of its pages; the runs after measure the
      // steady state a node's disk lives in.
      const on = servers.filter((s) => s.lba === (w.lba ?? 512));
      const first: Record<string, number> = {};
      for (const s of on) first[s.column] = await w.run(s.served.url).catch(() => NaN);
      for (let i = 0; i < ctx.o.runs; i++) {
        const order = on.map((_, k) => on[(k + i) % on.length]!);
        for (const { column, served } of order) {
          if (failures.has(`${served.name} ${w.name}`)) continue;
          const c0 = cpuSeconds(served.child.pid!);
          try {
            (iops[column] ??= []).push(await w.run(served.url));
          } catch (err) {
            // one target failing a workload leaves its cell empty, with the reason under the table
            failures.set(`${served.name} ${w.name}`, (err as Error).message.split('\n').filter(Boolean).at(-1) ?? String(err));
            continue;
          }
          (cpu[column] ??= []).push(cpuSeconds(served.child.pid!) - c0);
        }
      }
      const m = (n: string) => (iops[n] ? median(iops[n]) : NaN);
      const mb = (n: string) => (m(n) * w.bytes) / 1e6;
      const c = (n: string) => (cpu[n] ? fmt(median(cpu[n]), 1) : '-');
      if (Number.isFinite(m('embedded') / m('file'))) worst = Math.min(worst, m('embedded') / m('file'));
      const ratio = (a: number, b: number) => `${fmt(a / b, 2)}x`;
      console.log(`| ${w.label} | ${fmt(mb('embedded'), 0)} | ${fmt(mb('file'), 0)} | ${fmt(mb('zfs'), 0)} | ${ratio(m('embedded'), m('file'))} | ${ratio(m('zfs'), m('file'))} | ${c('embedded')} / ${c('file')} / ${c('zfs')} | ${ratio(first['embedded']!, first['file']!)} / ${ratio(first['zfs'] ?? NaN, first['file']!)} |`);
    }
    for (const [what, why] of failures) console.log(`${what}: failed: ${why}`);
    console.log(`goal: embedded clone >= 0.9x the plain file on every workload: ${worst >= 0.9 ? 'met' : 'NOT met'} (worst ${fmt(worst, 2)}x)`);
  } finally {
    for (const s of servers) await stop(s.served);
  }
}


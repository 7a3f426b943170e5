/**
 * `npm run bench:store`: the embedded storage driver side by side with its peers, in one run,
 * printing ratios (issue 4's goals in brackets):
 *
 * - clone: time to clone a golden image of 1 GiB and 10 GiB (fully written with random data),
 *   embedded `clone` vs a file copy (`cp --sparse=always`, and `cp --reflink=auto`, which on a
 *   file system without reflinks is a copy too) vs zfs-fuse `zfs clone` [embedded < 50 ms,
 *   independent of size];
 * - send: incremental stream size after changing 1% of a 1 GiB clone, as scattered 4 KiB
 *   writes and as one contiguous run, embedded vs zfs-fuse (`zfs send -i`) [<= 1.05x the
 *   changed bytes];
 * - iscsi: iSCSI throughput on loopback (the bench:iscsi workloads: iscsi-perf reads,
 *   qemu-img bench 4 KiB-aligned strided reads and writes) on an embedded clone, a plain file LUN (file driver) and a zfs-fuse
 *   file volume, each served by `diskless export iscsi` in its own process, alternating
 *   targets, medians of RUNS after one pass of each workload on every target (its ratio shown
 *   apart: on the clone, the copy-on-write of never-written blocks) [embedded >= 0.9x the file];
 * - extent: the extent size choice: 128 KiB sequential read throughput and 4 KiB strided
 *   write IOPS on a fresh clone of a 256 MiB golden image in pools made with each extent size.
 *
 * Everything lives in a temporary directory (and zfs-fuse pools named dl4b-*) removed at the
 * end. Ports 127.0.0.1:15300-15399.
 *
 * Usage: node dist/bench/store.bench.js [--only clone,send,iscsi,extent] [--sizes 1,10]
 *   [--runs N] [--seconds S] [--extent-sizes 16,32,64,128] [--extent-mib M] [--zfs-max-gib G]
 *   [--no-zfs]   (defaults: all sections, 1 and 10 GiB, 3 runs, 2 s, 16-128 KiB, 256 MiB,
 *   zfs-fuse clones up to 1 GiB: importing 10 GiB through FUSE alone takes ~4 minutes)
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DATA_FILE } from '../src/store/embedded/extent-files.js';
import { EmbeddedStorageDriver } from '../src/store/embedded/embedded-storage-driver.js';
import { ZfsStorageDriver } from '../src/store/zfs/zfs-storage-driver.js';
import type { StorageDriver } from '../src/store/storage-driver.js';
import { createTestPool, type TestPool } from '../test/support/zfs-fuse.js';
import { prng } from '../test/support/mutate.js';
import { cpuSeconds, iscsiPerf, median, qemuBench, waitForLine } from './bench-support.js';

const execFileP = promisify(execFile);
const HOST = '127.0.0.1';
const PORT_BASE = 15300;
const IQN = 'iqn.2026-11.io.diskless:bench-store';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BLOCK = 4096;
const SECTIONS = ['clone', 'send', 'iscsi', 'extent'] as const;
type Section = (typeof SECTIONS)[number];
const CLI = join(fileURLToPath(import.meta.url), '../../src/cli/main.js');
const USAGE = 'usage: node dist/bench/store.bench.js [--only clone,send,iscsi,extent] [--sizes 1,10] [--runs N] [--seconds S] [--extent-sizes 16,32,64,128] [--extent-mib M] [--zfs-max-gib G] [--no-zfs]';

interface Options {
  readonly only: ReadonlySet<Section>;
  /** Golden image sizes for the clone section, GiB. */
  readonly sizes: readonly number[];
  readonly runs: number;
  /** Length of each iscsi-perf run (writes are sized to take about as long). */
  readonly seconds: number;
  /** Extent sizes to compare, KiB. */
  readonly extentSizes: readonly number[];
  readonly extentMiB: number;
  readonly zfs: boolean;
  /** Largest golden image (GiB) the clone section also imports into zfs-fuse (~25 s per GiB through FUSE). */
  readonly zfsMaxGiB: number;
}

/** What the sections share: the work directory, golden images, the embedded pool, the zfs side. */
interface Context {
  readonly o: Options;
  readonly work: string;
  readonly images: Map<number, string>;
  emb: EmbeddedStorageDriver | undefined;
  readonly poolDir: string;
  zfs: { pool: TestPool; driver: ZfsStorageDriver; dataset: string } | undefined | null;
  /** Golden volumes (name → image bytes) already in each driver. */
  readonly goldens: { embedded: Set<string>; zfs: Set<string> };
  reflinks: boolean;
}

const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const now = (): number => performance.now();

/** A file of `bytes` random bytes (every 4 KiB block distinct, nothing compressible), written once per size. */
async function goldenImage(ctx: Context, bytes: number): Promise<string> {
  const have = ctx.images.get(bytes);
  if (have) return have;
  const path = join(ctx.work, `golden-${bytes / MiB}m.img`);
  const f = await open(path, 'w');
  const buf = Buffer.allocUnsafe(4 * MiB);
  try {
    for (let at = 0; at < bytes; at += buf.length) {
      randomFillSync(buf);
      await f.write(buf, 0, Math.min(buf.length, bytes - at), at);
    }
  } finally {
    await f.close();
  }
  ctx.images.set(bytes, path);
  return path;
}

async function embedded(ctx: Context): Promise<EmbeddedStorageDriver> {
  ctx.emb ??= await EmbeddedStorageDriver.open({ pool: ctx.poolDir });
  return ctx.emb;
}

/** The embedded pool closed (so an `export iscsi --pool` child can lock it). */
async function closeEmbedded(ctx: Context): Promise<void> {
  await ctx.emb?.close();
  ctx.emb = undefined;
}

/** The zfs-fuse side, or null (with the reason printed once) when it cannot run here or --no-zfs. */
async function zfs(ctx: Context): Promise<NonNullable<Context['zfs']> | null> {
  if (ctx.zfs !== undefined) return ctx.zfs;
  if (!ctx.o.zfs) return (ctx.zfs = null);
  try {
    const need = (ctx.o.only.has('clone') ? ctx.o.sizes.filter((g) => g <= ctx.o.zfsMaxGiB).reduce((a, b) => a + b, 0) * GiB : 0) + 3 * GiB;
    const pool = await createTestPool({ prefix: 'dl4b', size: Math.ceil(need * 1.2) });
    const dataset = `${pool.name}/dl`;
    const driver = await ZfsStorageDriver.open({ dataset });
    ctx.zfs = { pool, driver, dataset };
  } catch (err) {
    console.log(`zfs-fuse columns left out: ${(err as Error).message}`);
    ctx.zfs = null;
  }
  return ctx.zfs;
}

/** Volume `golden<N>m` holding the N MiB golden image, with snapshot @v1; returns the import seconds (0 when it existed). */
async function golden(ctx: Context, driver: StorageDriver, kind: 'embedded' | 'zfs', bytes: number): Promise<{ name: string; importSeconds: number }> {
  const name = `golden${bytes / MiB}m`;
  if (ctx.goldens[kind].has(name)) return { name, importSeconds: 0 };
  const image = await goldenImage(ctx, bytes);
  const t = now();
  await driver.create(name, { from: image });
  await driver.snapshot(name, 'v1');
  ctx.goldens[kind].add(name);
  return { name, importSeconds: (now() - t) / 1000 };
}

/** True when the work directory's file system can share blocks between files (`cp --reflink=always` works). */
async function reflinksWork(dir: string): Promise<boolean> {
  const a = join(dir, 'reflink-probe');
  await writeFile(a, 'x');
  try {
    await execFileP('cp', ['--reflink=always', a, `${a}.copy`]);
    return true;
  } catch {
    return false;
  } finally {
    await rm(a, { force: true });
    await rm(`${a}.copy`, { force: true });
  }
}

async function timeCommand(cmd: string, args: string[]): Promise<number> {
  const t = now();
  await execFileP(cmd, args, { maxBuffer: 1 << 20 });
  return (now() - t) / 1000;
}

// ---- clone ------------------------------------------------------------------------------

async function cloneSection(ctx: Context): Promise<string[]> {
  const rows: string[] = [];
  const verdicts: string[] = [];
  console.log(`\n## clone: golden images of ${ctx.o.sizes.join(' and ')} GiB (random data); embedded and zfs clones ${ctx.o.runs} each, cp once per 10 GiB (runs times below 4 GiB)`);
  ctx.reflinks = await reflinksWork(ctx.work);
  console.log(`reflinks on ${ctx.work}: ${ctx.reflinks ? 'yes' : 'no (cp --reflink=auto copies; left out at 4 GiB and more)'}; zfs-fuse clones for images up to ${ctx.o.zfsMaxGiB} GiB (--zfs-max-gib)`);
  const embMedians: number[] = [];
  for (const gib of ctx.o.sizes) {
    const bytes = gib * GiB;
    const image = await goldenImage(ctx, bytes);
    const emb = await embedded(ctx);
    const g = await golden(ctx, emb, 'embedded', bytes);
    const embMs: number[] = [];
    for (let i = 0; i < ctx.o.runs; i++) {
      const t = now();
      await emb.clone(g.name, 'v1', `${g.name}-c${i}`);
      embMs.push(now() - t);
    }
    const cpRuns = gib >= 4 ? 1 : ctx.o.runs;
    const cp = async (flag: string): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < cpRuns; i++) {
        const dst = join(ctx.work, 'copy.img');
        times.push(await timeCommand('cp', [flag, image, dst]));
        await rm(dst, { force: true });
      }
      return median(times);
    };
    const sparse = await cp('--sparse=always');
    // without reflinks (ext4) --reflink=auto is one more full copy: measured at small sizes only
    const reflink = ctx.reflinks || gib < 4 ? await cp('--reflink=auto') : NaN;
    let zfsMs = NaN;
    let zfsImport = NaN;
    const z = gib <= ctx.o.zfsMaxGiB ? await zfs(ctx) : null;
    if (z) {
      const zg = await golden(ctx, z.driver, 'zfs', bytes);
      zfsImport = zg.importSeconds;
      const times: number[] = [];
      for (let i = 0; i < ctx.o.runs; i++) {
        const t = now();
        await z.driver.clone(zg.name, 'v1', `${zg.name}-c${i}`);
        times.push(now() - t);
      }
      zfsMs = median(times);
    }
    const e = median(embMs);
    embMedians.push(e);
    rows.push(`| ${gib} GiB | ${fmt(e, 2)} (${embMs.map((x) => fmt(x, 1)).join(', ')}) | ${fmt(sparse * 1000, 0)} | ${fmt(reflink * 1000, 0)} | ${fmt(zfsMs, 1)} | ${fmt((sparse * 1000) / e, 0)}x | ${fmt(zfsMs / e, 1)}x | ${fmt(g.importSeconds, 1)} / ${fmt(zfsImport, 1)} |`);
    verdicts.push(`${gib} GiB ${fmt(e, 2)} ms`);
  }
  console.log('| golden | embedded clone ms (median; runs) | cp --sparse=always ms | cp --reflink=auto ms | zfs-fuse clone ms | cp / embedded | zfs / embedded | import s embedded / zfs |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  const worst = Math.max(...embMedians);
  console.log(`goal: embedded clone < 50 ms at every size: ${worst < 50 ? 'met' : 'NOT met'} (${verdicts.join(', ')})`);
  return rows;
}

// ---- send -------------------------------------------------------------------------------

/** 1% of 1 GiB in 4 KiB blocks, as distinct scattered block indices or one contiguous run. */
function changedBlocks(pattern: 'scattered' | 'contiguous', volumeBytes: number): number[] {
  const total = volumeBytes / BLOCK;
  const count = Math.round(total / 100);
  const rand = prng(pattern === 'scattered' ? 0x5ca7 : 0xc0de);
  if (pattern === 'contiguous') {
    const start = Math.floor(rand() * (total - count));
    return Array.from({ length: count }, (_, i) => start + i);
  }
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(rand() * total));
  return [...picked];
}

/** Clones golden@v1, snapshots @a, writes the changed blocks, snapshots @b, and measures `send -i a b`. */
async function incremental(driver: StorageDriver, goldenName: string, pattern: 'scattered' | 'contiguous', volumeBytes: number): Promise<{ changed: number; stream: number; seconds: number }> {
  const vol = `inc-${pattern}`;
  await driver.clone(goldenName, 'v1', vol);
  await driver.snapshot(vol, 'a');
  const blocks = changedBlocks(pattern, volumeBytes);
  const dev = await driver.open(vol);
  try {
    const data = Buffer.allocUnsafe(BLOCK);
    if (pattern === 'contiguous') {
      const run = Buffer.allocUnsafe(blocks.length * BLOCK);
      randomFillSync(run);
      for (let at = 0; at < run.length; at += MiB) await dev.write(blocks[0]! * BLOCK + at, run.subarray(at, at + MiB));
    } else {
      for (const b of blocks) {
        randomFillSync(data);
        await dev.write(b * BLOCK, data);
      }
    }
    await dev.flush();
  } finally {
    await dev.close();
  }
  await driver.snapshot(vol, 'b');
  const t = now();
  let stream = 0;
  for await (const chunk of driver.send(vol, 'b', { base: 'a' })) stream += chunk.length;
  return { changed: blocks.length * BLOCK, stream, seconds: (now() - t) / 1000 };
}

async function sendSection(ctx: Context): Promise<void> {
  console.log('\n## send: incremental stream after changing 1% of a 1 GiB clone (send -i @a @b)');
  console.log('| writes | changed bytes | embedded stream bytes | embedded / changed | zfs-fuse stream bytes | zfs / changed | send s embedded / zfs |');
  console.log('|---|---|---|---|---|---|---|');
  const emb = await embedded(ctx);
  const eg = await golden(ctx, emb, 'embedded', GiB);
  const z = await zfs(ctx);
  const zg = z ? await golden(ctx, z.driver, 'zfs', GiB) : undefined;
  let worst = 0;
  for (const pattern of ['scattered', 'contiguous'] as const) {
    const e = await incremental(emb, eg.name, pattern, GiB);
    const zr = z && zg ? await incremental(z.driver, zg.name, pattern, GiB) : undefined;
    worst = Math.max(worst, e.stream / e.changed);
    console.log(`| ${pattern === 'scattered' ? 'scattered 4 KiB' : 'one contiguous run'} | ${e.changed} | ${e.stream} | ${fmt(e.stream / e.changed, 3)}x | ${zr ? zr.stream : '-'} | ${zr ? fmt(zr.stream / zr.changed, 3) + 'x' : '-'} | ${fmt(e.seconds, 2)} / ${zr ? fmt(zr.seconds, 2) : '-'} |`);
  }
  console.log(`goal: embedded stream <= 1.05x the changed bytes: ${worst <= 1.05 ? 'met' : 'NOT met'} (worst ${fmt(worst, 3)}x)`);
}

// ---- iSCSI ------------------------------------------------------------------------------

interface Served {
  readonly name: string;
  readonly child: ChildProcess;
  readonly url: string;
}

/** `diskless export iscsi ARGS` on `port` in its own process, once it listens. */
async function serve(name: string, args: string[], port: number): Promise<Served> {
  const iqn = `${IQN}-${name}`;
  const child = spawn(process.execPath, [CLI, 'export', 'iscsi', ...args, '--iqn', iqn, '--listen', `${HOST}:${port}`, '--lun', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(child, 'listening', 30_000);
  return { name, child, url: `iscsi://${HOST}:${port}/${iqn}/0` };
}

async function stop(s: Served): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

interface Workload {
  readonly name: string;
  readonly label: string;
  readonly bytes: number;
  run(url: string): Promise<number>;
}

function workloads(seconds: number): Workload[] {
  const stride = 4097 * BLOCK; // odd in 4 KiB units: visits every block of the LUN, scattered
  return [
    { name: 'read128k', label: '128 KiB seq read qd32 (iscsi-perf)', bytes: 131072, run: (u) => iscsiPerf(u, seconds, 256, false) },
    // iscsi-perf -r picks 512-byte-aligned offsets: 7 reads in 8 span two 4 KiB blocks, which
    // the clone reads and verifies whole (8 KiB) while the file copies 4 KiB.
    { name: 'rand4k', label: '4 KiB random read qd32, 512-byte-aligned (iscsi-perf -r)', bytes: 4096, run: (u) => iscsiPerf(u, seconds, 8, true) },
    // What a Linux initiator's page cache and file systems send: 4 KiB-aligned.
    { name: 'read4k', label: '4 KiB strided read qd32, 4 KiB-aligned (qemu-img bench)', bytes: 4096, run: (u) => qemuBench(u, 40_000 * seconds, 32, '4k', stride, true) },
    { name: 'write4k', label: '4 KiB strided write qd32 (qemu-img bench)', bytes: 4096, run: (u) => qemuBench(u, 15_000 * seconds, 32, '4k', stride) },
    { name: 'write64k', label: '64 KiB seq write qd16 (qemu-img bench)', bytes: 65536, run: (u) => qemuBench(u, 2_000 * seconds, 16, '64k') },
  ];
}

async function iscsiSection(ctx: Context): Promise<void> {
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
  const servers: Served[] = [];
  try {
    servers.push(await serve('embedded', ['--pool', ctx.poolDir, 'lun'], PORT_BASE + 1));
    servers.push(await serve('file', [lunFile], PORT_BASE + 2));
    if (z) servers.push(await serve('zfs', ['--zfs', z.dataset, 'lun'], PORT_BASE + 3));
    console.log(`\n## iscsi: 1 GiB LUN on loopback: embedded clone of the golden image vs the same image as a plain file vs a zfs-fuse clone; ${ctx.o.runs} run(s) each, alternating, medians; iscsi-perf -t ${ctx.o.seconds}`);
    console.log('| workload | embedded MB/s | file MB/s | zfs-fuse MB/s | embedded / file | zfs / file | server CPU s embedded / file / zfs | first pass: embedded / file, zfs / file |');
    console.log('|---|---|---|---|---|---|---|---|');
    // Every LUN starts from the same page-cache state: the pool's data file and the plain file
    // are dropped from the cache (dd iflag=nocache count=0, after sync), then each LUN is read
    // once through its target. Without the drop, each file kept the pages its creation left
    // (the pool's from import writes, the file's from cp), and pages brought in by readahead
    // made 4 KiB reads ~10% cheaper for either target here (page-cache lookups, xas_load).
    // zfs-fuse's cache is its own ARC: its warm-up read is what it gets.
    for (const f of [join(ctx.poolDir, DATA_FILE), lunFile]) {
      await execFileP('sync', [f]);
      await execFileP('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
    }
    for (const s of servers) await execFileP('qemu-img', ['bench', '-f', 'raw', '-t', 'none', '-n', '-c', String(GiB / 131072), '-d', '16', '-s', '128k', s.url], { timeout: 300_000 });
    let worst = Infinity;
    const failures = new Map<string, string>();
    for (const w of workloads(ctx.o.seconds)) {
      const iops: Record<string, number[]> = {};
      const cpu: Record<string, number[]> = {};
      // One pass of the workload on every target first, shown apart and left out of the
      // medians (like fio's ramp_time): on the clone it is the copy-on-write of blocks it has
      // never written, on the file the first touch of its pages; the runs after measure the
      // steady state a node's disk lives in.
      const first: Record<string, number> = {};
      for (const s of servers) first[s.name] = await w.run(s.url).catch(() => NaN);
      for (let i = 0; i < ctx.o.runs; i++) {
        const order = servers.map((_, k) => servers[(k + i) % servers.length]!);
        for (const s of order) {
          if (failures.has(`${s.name} ${w.name}`)) continue;
          const c0 = cpuSeconds(s.child.pid!);
          try {
            (iops[s.name] ??= []).push(await w.run(s.url));
          } catch (err) {
            // one target failing a workload leaves its cell empty, with the reason under the table
            failures.set(`${s.name} ${w.name}`, (err as Error).message.split('\n').filter(Boolean).at(-1) ?? String(err));
            continue;
          }
          (cpu[s.name] ??= []).push(cpuSeconds(s.child.pid!) - c0);
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
    for (const s of servers) await stop(s);
  }
}

// ---- extent size --------------------------------------------------------------------------

async function extentSection(ctx: Context): Promise<void> {
  const bytes = ctx.o.extentMiB * MiB;
  const image = await goldenImage(ctx, bytes);
  const pools = new Map<number, string>();
  for (const kib of ctx.o.extentSizes) {
    const dir = join(ctx.work, `pool-extent-${kib}k`);
    const d = await EmbeddedStorageDriver.open({ pool: dir, extentSize: kib * 1024 });
    await d.create('golden', { from: image });
    await d.snapshot('golden', 'v1');
    await d.close();
    pools.set(kib, dir);
  }
  const read: Record<number, number[]> = {};
  const write: Record<number, number[]> = {};
  const [read128k, , write4k] = workloads(ctx.o.seconds);
  for (let i = 0; i < ctx.o.runs; i++) {
    const order = ctx.o.extentSizes.map((_, k) => ctx.o.extentSizes[(k + i) % ctx.o.extentSizes.length]!);
    for (const kib of order) {
      const dir = pools.get(kib)!;
      const d = await EmbeddedStorageDriver.open({ pool: dir });
      await d.clone('golden', 'v1', `fresh${i}`); // a fresh clone per run: every first write copies an extent
      await d.close();
      const s = await serve(`extent${kib}k`, ['--pool', dir, `fresh${i}`], PORT_BASE + 10);
      try {
        (read[kib] ??= []).push((await read128k!.run(s.url)) * read128k!.bytes);
        (write[kib] ??= []).push(await write4k!.run(s.url));
      } finally {
        await stop(s);
      }
    }
  }
  console.log(`\n## extent size: fresh clone of a ${ctx.o.extentMiB} MiB golden image per run, ${ctx.o.runs} run(s) each, alternating, medians (extent sizes are powers of two from 4 to 128 KiB: one u32 mask of written 4 KiB blocks per extent)`);
  console.log('| extent size | 128 KiB seq read MB/s | 4 KiB strided write IOPS (first writes: copy-on-write) |');
  console.log('|---|---|---|');
  for (const kib of ctx.o.extentSizes) console.log(`| ${kib} KiB | ${fmt(median(read[kib]!) / 1e6, 0)} | ${fmt(median(write[kib]!), 0)} |`);
}

/** Closes the zfs driver and destroys the bench's pool, retrying while zfs-fuse still calls it busy. */
async function destroyZfs(z: NonNullable<Context['zfs']>): Promise<void> {
  await z.driver.close().catch(() => undefined);
  for (let i = 0; i < 60; i++) {
    const r = await execFileP('zpool', ['destroy', '-f', z.pool.name]).then(
      () => 'ok',
      (err: { stderr?: string }) => String(err.stderr ?? err),
    );
    if (r === 'ok' || /no such pool/.test(r)) break;
    if (i === 59) console.log(`zpool destroy ${z.pool.name} failed: ${r}`);
    await new Promise((res) => setTimeout(res, 500));
  }
  await z.pool.destroy(); // removes its directory
}

// ---- main -------------------------------------------------------------------------------

async function bench(o: Options): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'dl4b-store-bench-'));
  const ctx: Context = { o, work, images: new Map(), emb: undefined, poolDir: join(work, 'pool'), zfs: undefined, goldens: { embedded: new Set(), zfs: new Set() }, reflinks: false };
  const t0 = now();
  try {
    console.log(`bench:store in ${work}: ${[...o.only].join(', ')}; runs ${o.runs}${o.zfs ? '' : '; zfs-fuse left out (--no-zfs)'}`);
    if (o.only.has('clone')) await cloneSection(ctx);
    // the 10 GiB image is not needed past the clones
    for (const [bytes, path] of ctx.images) if (bytes > GiB) rmSync(path, { force: true });
    if (o.only.has('send')) await sendSection(ctx);
    if (o.only.has('extent')) await extentSection(ctx);
    if (o.only.has('iscsi')) await iscsiSection(ctx);
    console.log(`\nbench:store took ${fmt((now() - t0) / 1000, 0)} s`);
  } finally {
    await closeEmbedded(ctx).catch(() => undefined);
    if (ctx.zfs) await destroyZfs(ctx.zfs);
    rmSync(work, { recursive: true, force: true });
  }
}

function parse(argv: string[]): Options | string {
  const known = new Set(['--only', '--sizes', '--runs', '--seconds', '--extent-sizes', '--extent-mib', '--zfs-max-gib', '--no-zfs', '--help']);
  for (let i = 0; i < argv.length; i++) {
    if (!known.has(argv[i]!)) return `unknown option ${argv[i]}`;
    if (argv[i] !== '--no-zfs' && argv[i] !== '--help') i++;
  }
  if (argv.includes('--help')) return '';
  const flag = (name: string) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
  const list = (s: string) => s.split(',').map(Number);
  const only = (flag('--only') ?? SECTIONS.join(',')).split(',');
  const bad = only.find((s) => !(SECTIONS as readonly string[]).includes(s));
  if (bad !== undefined) return `--only ${bad}: allowed are ${SECTIONS.join(', ')}`;
  const o: Options = {
    only: new Set(only as Section[]),
    sizes: list(flag('--sizes') ?? '1,10'),
    runs: Number(flag('--runs') ?? 3),
    seconds: Number(flag('--seconds') ?? 2),
    extentSizes: list(flag('--extent-sizes') ?? '16,32,64,128'),
    extentMiB: Number(flag('--extent-mib') ?? 256),
    zfs: !argv.includes('--no-zfs'),
    zfsMaxGiB: Number(flag('--zfs-max-gib') ?? 1),
  };
  if (!o.sizes.every((n) => Number.isInteger(n) && n > 0)) return '--sizes: positive whole GiB, comma separated';
  if (!o.extentSizes.every((n) => [4, 8, 16, 32, 64, 128].includes(n))) return '--extent-sizes: KiB, each one of 4, 8, 16, 32, 64, 128';
  if (![o.runs, o.seconds, o.extentMiB].every((n) => Number.isInteger(n) && n > 0)) return '--runs, --seconds, --extent-mib: positive integers';
  if (!Number.isInteger(o.zfsMaxGiB) || o.zfsMaxGiB < 0) return '--zfs-max-gib: a whole number of GiB, 0 or more';
  return o;
}

const parsed = parse(process.argv.slice(2));
if (typeof parsed === 'string') {
  if (parsed) console.error(parsed);
  console.error(USAGE);
  process.exit(parsed ? 2 : 0);
}
await bench(parsed);

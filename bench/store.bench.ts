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
 * - iscsi (store-iscsi.ts): iSCSI throughput on loopback (the bench:iscsi workloads:
 *   iscsi-perf reads, qemu-img bench writes; and 4 KiB-aligned random reads on a second pair
 *   of LUNs with 4096-byte blocks) on an embedded clone, a plain file LUN (file driver) and a
 *   zfs-fuse file volume, each served by `diskless export iscsi` in its own process,
 *   alternating targets, medians of RUNS after one pass of each workload on every target (its
 *   ratio shown apart: on the clone, the copy-on-write of never-written blocks) [embedded >=
 *   0.9x the file];
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
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStorageDriver } from '../src/store/embedded/embedded-storage-driver.js';
import type { StorageDriver } from '../src/store/storage-driver.js';
import { prng } from '../test/support/mutate.js';
import { median } from './bench-support.js';
import { iscsiSection, workloads } from './store-iscsi.js';
import { BLOCK, closeEmbedded, destroyZfs, embedded, execFileP, fmt, GiB, golden, goldenImage, MiB, now, PORT_BASE, SECTIONS, serve, stop, zfs, type Context, type Options, type Section } from './store-context.js';

const USAGE = 'usage: node dist/bench/store.bench.js [--only clone,send,iscsi,extent] [--sizes 1,10] [--runs N] [--seconds S] [--extent-sizes 16,32,64,128] [--extent-mib M] [--zfs-max-gib G] [--no-zfs]';

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
  const named = (n: string) => workloads(ctx.o.seconds).find((w) => w.name === n)!;
  const read128k = named('read128k');
  const write4k = named('write4k');
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


/**
 * What the sections of bench:store (store.bench.ts, store-iscsi.ts) share: options, the work
 * context (golden images, the embedded pool, the zfs-fuse side) and `diskless export iscsi`
 * target processes.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EmbeddedStorageDriver } from '../src/store/embedded/embedded-storage-driver.js';
import { ZfsStorageDriver } from '../src/store/zfs/zfs-storage-driver.js';
import type { StorageDriver } from '../src/store/storage-driver.js';
import { createTestPool, type TestPool } from '../test/support/zfs-fuse.js';
import { waitForLine } from './bench-support.js';

export const execFileP = promisify(execFile);
export const HOST = '127.0.0.1';
export const PORT_BASE = 15300;
export const IQN = 'iqn.2026-11.io.diskless:bench-store';
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const BLOCK = 4096;
export const CLI = join(fileURLToPath(import.meta.url), '../../src/cli/main.js');
export const SECTIONS = ['clone', 'send', 'iscsi', 'extent'] as const;
export type Section = (typeof SECTIONS)[number];

export interface Options {
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
export interface Context {
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

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
export const now = (): number => performance.now();

/** A file of `bytes` random bytes (every 4 KiB block distinct, nothing compressible), written once per size. */
export async function goldenImage(ctx: Context, bytes: number): Promise<string> {
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

export async function embedded(ctx: Context): Promise<EmbeddedStorageDriver> {
  ctx.emb ??= await EmbeddedStorageDriver.open({ pool: ctx.poolDir });
  return ctx.emb;
}

/** The embedded pool closed (so an `export iscsi --pool` child can lock it). */
export async function closeEmbedded(ctx: Context): Promise<void> {
  await ctx.emb?.close();
  ctx.emb = undefined;
}

/** The zfs-fuse side, or null (with the reason printed once) when it cannot run here or --no-zfs. */
export async function zfs(ctx: Context): Promise<NonNullable<Context['zfs']> | null> {
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
export async function golden(ctx: Context, driver: StorageDriver, kind: 'embedded' | 'zfs', bytes: number): Promise<{ name: string; importSeconds: number }> {
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

/** Closes the zfs driver and destroys the bench's pool, retrying while zfs-fuse still calls it busy. */
export async function destroyZfs(z: NonNullable<Context['zfs']>): Promise<void> {
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


// ---- target processes -------------------------------------------------------------------

export interface Served {
  readonly name: string;
  readonly child: ChildProcess;
  readonly url: string;
}

/** `diskless export iscsi ARGS` on `port` in its own process, once it listens. */
export async function serve(name: string, args: string[], port: number): Promise<Served> {
  const iqn = `${IQN}-${name}`;
  const child = spawn(process.execPath, [CLI, 'export', 'iscsi', ...args, '--iqn', iqn, '--listen', `${HOST}:${port}`, '--lun', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(child, 'listening', 30_000);
  return { name, child, url: `iscsi://${HOST}:${port}/${iqn}/0` };
}

export async function stop(s: Served): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}


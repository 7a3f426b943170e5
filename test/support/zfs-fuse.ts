/**
 * zfs-fuse for tests and benchmarks (LAB.md §6): `ensureZfsFuse()` starts the one daemon the
 * machine shares if it is not answering yet (idempotent, safe when it already runs or when two
 * test files race to start it), and `createTestPool()` makes a pool on a sparse file in a
 * fresh temporary directory, named with a prefix plus a random suffix, that `destroy()`
 * removes again. Pools are created with cachefile=none, so a daemon restart never tries to
 * import a pool whose file is gone.
 */
import { execFile, spawn } from 'node:child_process';
import { access, constants, mkdtemp, rm, writeFile, open, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { processAlive } from '../../src/store/process-alive.js';

/** How long a starting daemon may take to answer `zpool list`. */
const START_TIMEOUT_MS = 15_000;

function run(cmd: string, args: string[], timeout = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? String(err) : '') });
    });
  });
}

/** True when the zfs-fuse daemon answers. */
export async function zfsFuseRunning(): Promise<boolean> {
  return (await run('zpool', ['list', '-H', '-o', 'name'], 10_000)).code === 0;
}

/** What `ensureZfsFuse` did. */
export interface ZfsFuseDaemon {
  /** True when this call started the daemon (it was not answering before). */
  readonly started: boolean;
  /** The daemon's pid file. */
  readonly pidFile: string;
}

let starting: Promise<ZfsFuseDaemon> | undefined;

/**
 * Makes sure the zfs-fuse daemon runs. Throws with what to do when zfs-fuse is not installed
 * (scripts/install-deps.sh installs it) or /dev/fuse is missing (modprobe fuse is tried).
 */
export function ensureZfsFuse(): Promise<ZfsFuseDaemon> {
  starting ??= start().finally(() => {
    starting = undefined;
  });
  return starting;
}

async function start(): Promise<ZfsFuseDaemon> {
  const pidFile = '/run/zfs-fuse.pid';
  if (await zfsFuseRunning()) return { started: false, pidFile };
  if ((await run('sh', ['-c', 'command -v zfs-fuse'])).code !== 0) throw new Error('zfs-fuse is not installed: run scripts/install-deps.sh (Debian package zfs-fuse)');
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    await run('modprobe', ['fuse']);
    await access('/dev/fuse', constants.R_OK | constants.W_OK).catch(() => {
      throw new Error('zfs-fuse needs /dev/fuse: load the fuse module (modprobe fuse) or give the container the device');
    });
  }
  // A daemon that died (kill -9, crash) leaves its pid file, and a daemonizing zfs-fuse then exits 1 silently (measured).
  const stale = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (Number.isSafeInteger(stale) && stale > 1 && !processAlive(stale)) await unlink(pidFile).catch(() => undefined);
  // zfs-fuse daemonizes itself; a second starter racing us fails to bind the socket and exits, which is fine.
  const child = spawn('zfs-fuse', ['-p', pidFile], { stdio: 'ignore', detached: true });
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await zfsFuseRunning()) return { started: true, pidFile };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`zfs-fuse did not answer within ${START_TIMEOUT_MS} ms after starting`);
}


/** A pool on a file, for one test file or bench run. */
export interface TestPool {
  readonly name: string;
  /** The temporary directory holding the pool file(s) and mountpoint. */
  readonly dir: string;
  /** The pool's backing files. */
  readonly files: readonly string[];
  /** Where the pool's root dataset is mounted. */
  readonly mountpoint: string;
  /** Destroys the pool and removes its directory. Idempotent; never throws. */
  destroy(): Promise<void>;
}

/** Options of `createTestPool`. */
export interface TestPoolOptions {
  /** Pool name prefix (the caller's namespace, e.g. "dl4a"); a random suffix is added. */
  readonly prefix: string;
  /** Size of each backing file in bytes (sparse; default 512 MiB). */
  readonly size?: number;
  /** Two files mirrored (for self-healing tests) instead of one. */
  readonly mirror?: boolean;
}

/** Creates a pool on sparse files under a new temporary directory (starting zfs-fuse if needed). */
export async function createTestPool(options: TestPoolOptions): Promise<TestPool> {
  await ensureZfsFuse();
  const name = `${options.prefix}-${randomBytes(4).toString('hex')}`;
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  const files = options.mirror ? [join(dir, 'a.img'), join(dir, 'b.img')] : [join(dir, 'pool.img')];
  for (const f of files) {
    await writeFile(f, '');
    const fh = await open(f, 'r+');
    await fh.truncate(options.size ?? 512 * 1024 * 1024);
    await fh.close();
  }
  const mountpoint = join(dir, 'mnt');
  const r = await run('zpool', ['create', '-o', 'cachefile=none', '-O', 'atime=off', '-m', mountpoint, name, ...(options.mirror ? ['mirror'] : []), ...files]);
  if (r.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`zpool create ${name} failed (${r.code}): ${r.stderr}`);
  }
  let destroyed = false;
  return {
    name,
    dir,
    files,
    mountpoint,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      for (let i = 0; i < 20; i++) {
        const d = await run('zpool', ['destroy', '-f', name]);
        if (d.code === 0 || /no such pool/.test(d.stderr)) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Exports `pool` and imports it again from its directory: drops every cached block (the ARC),
 * so the next read comes from the files (tests that corrupt a file on disk need this).
 */
export async function reimportPool(pool: TestPool): Promise<void> {
  const e = await run('zpool', ['export', pool.name]);
  if (e.code !== 0) throw new Error(`zpool export ${pool.name} failed: ${e.stderr}`);
  const i = await run('zpool', ['import', '-o', 'cachefile=none', '-d', pool.dir, pool.name]);
  if (i.code !== 0) throw new Error(`zpool import ${pool.name} failed: ${i.stderr}`);
}

/**
 * Stops the daemon, but only when this process started it and no pool is left (other test
 * files or helpers may still use it otherwise). For benchmarks that want to leave no trace.
 */
export async function stopZfsFuseIfIdle(daemon: ZfsFuseDaemon): Promise<boolean> {
  if (!daemon.started) return false;
  const pools = await run('zpool', ['list', '-H', '-o', 'name']);
  if (pools.code !== 0 || pools.stdout.trim() !== '') return false;
  const pid = Number((await run('cat', [daemon.pidFile])).stdout.trim());
  if (!Number.isSafeInteger(pid) || pid <= 1) return false;
  process.kill(pid, 'SIGTERM');
  return true;
}

/**
 * zfs-fuse for tests and benchmarks (LAB.md §6): `ensureZfsFuse()` checks that the one daemon
 * the machine shares answers (`zpool list` within ZFS_FUSE_ANSWER_TIMEOUT_MS), starting it when
 * it is not running and restarting it when it hangs, at most once per process (one test file);
 * when it still does not answer, this and every later call in the process reject at once with
 * one message naming the command that hung and the timeout, so every zfs test of the file fails
 * fast instead of waiting minutes each. `createTestPool()` makes a pool on a sparse file in a
 * fresh temporary directory, named with a prefix plus a random suffix, that `destroy()` removes
 * again. Pools are created with cachefile=none, so a daemon restart never tries to import a pool
 * whose file is gone.
 */
import { execFile, spawn } from 'node:child_process';
import { access, constants, mkdtemp, rm, writeFile, open, readFile, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { processAlive } from '../../src/store/process-alive.js';

/** How long `zpool list` may take before the daemon counts as hung. */
export const ZFS_FUSE_ANSWER_TIMEOUT_MS = 10_000;
/** The driver's command timeout for tests: a command of a hung daemon fails inside the 60 s case timeout, naming itself. */
export const ZFS_TEST_COMMAND_TIMEOUT_MS = 30_000;
/** How long a hung daemon may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 5_000;

/** Where the daemon, its client and its pid file are, and how long to wait for them (a seam: tests point it at fakes). */
export interface ZfsFuseSetup {
  /** The `zpool` program asked whether the daemon answers. */
  readonly zpool: string;
  /** The daemon program, started as `<daemon> -p <pidFile>` (it daemonizes itself). */
  readonly daemon: string;
  readonly pidFile: string;
  /** A file that serializes starts and restarts between processes (holds the owner's pid). */
  readonly restartLock: string;
  readonly answerTimeoutMs: number;
  /** How long a started daemon may take to answer. */
  readonly startTimeoutMs: number;
}

/** The machine's shared daemon. */
export const SHARED_ZFS_FUSE: ZfsFuseSetup = {
  zpool: 'zpool',
  daemon: 'zfs-fuse',
  pidFile: '/run/zfs-fuse.pid',
  restartLock: join(tmpdir(), 'zfs-fuse-restart.lock'),
  answerTimeoutMs: ZFS_FUSE_ANSWER_TIMEOUT_MS,
  startTimeoutMs: 15_000,
};

function run(cmd: string, args: string[], timeout = 60_000): Promise<{ code: number; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      const timedOut = (err as { killed?: boolean } | null)?.killed === true;
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === -1 && !timedOut ? String(err) : ''), timedOut });
    });
  });
}

/** What one `zpool list` said about the daemon. */
type Answer = { readonly kind: 'ok' } | { readonly kind: 'down'; readonly why: string } | { readonly kind: 'hung'; readonly why: string };

/** True when the shared zfs-fuse daemon answers. */
export async function zfsFuseRunning(): Promise<boolean> {
  return (await new ZfsFuseSupervisor().probe()).kind === 'ok';
}

/** What `ensureZfsFuse` did. */
export interface ZfsFuseDaemon {
  /** True when this call started the daemon (it was not answering before). */
  readonly started: boolean;
  /** The daemon's pid file. */
  readonly pidFile: string;
}

/**
 * Keeps one daemon answering for one process: `ensure()` probes it, and brings it back at most
 * once (start when it is down; stop and start when it hangs and its pid file names a live
 * process of the daemon program, never anything else); after that, and after a failed attempt,
 * a daemon that does not answer is a remembered failure that `ensure()` rethrows at once.
 */
export class ZfsFuseSupervisor {
  private failure: Error | undefined;
  private recovered = false;
  private pending: Promise<ZfsFuseDaemon> | undefined;

  constructor(readonly setup: ZfsFuseSetup = SHARED_ZFS_FUSE) {}

  /** Resolves when the daemon answers (see the class); concurrent calls share one check. */
  ensure(): Promise<ZfsFuseDaemon> {
    this.pending ??= this.check().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** Asks the daemon once (`zpool list -H -o name` within answerTimeoutMs). */
  async probe(): Promise<Answer> {
    const r = await run(this.setup.zpool, ['list', '-H', '-o', 'name'], this.setup.answerTimeoutMs);
    if (r.code === 0) return { kind: 'ok' };
    if (r.timedOut) return { kind: 'hung', why: `\`${this.setup.zpool} list -H -o name\` did not finish within ${this.setup.answerTimeoutMs} ms` };
    return { kind: 'down', why: `\`${this.setup.zpool} list -H -o name\` failed (exit ${r.code}): ${r.stderr.trim() || 'no message'}` };
  }

  private async check(): Promise<ZfsFuseDaemon> {
    if (this.failure) throw this.failure;
    const answer = await this.probe();
    if (answer.kind === 'ok') return { started: false, pidFile: this.setup.pidFile };
    if (this.recovered) throw this.fail(`zfs-fuse does not answer: ${answer.why} (it was already started or restarted once by this process)`);
    this.recovered = true;
    try {
      return await this.recover();
    } catch (err) {
      throw this.fail((err as Error).message);
    }
  }

  private fail(message: string): Error {
    this.failure = new Error(message);
    return this.failure;
  }

  private async recover(): Promise<ZfsFuseDaemon> {
    const { daemon, pidFile } = this.setup;
    if ((await run('sh', ['-c', 'command -v "$1"', 'sh', daemon])).code !== 0) throw new Error(`${daemon} is not installed: run scripts/install-deps.sh (Debian package zfs-fuse)`);
    try {
      await access('/dev/fuse', constants.R_OK | constants.W_OK);
    } catch {
      await run('modprobe', ['fuse']);
      await access('/dev/fuse', constants.R_OK | constants.W_OK).catch(() => {
        throw new Error('zfs-fuse needs /dev/fuse: load the fuse module (modprobe fuse) or give the container the device');
      });
    }
    return withFileLock(this.setup.restartLock, this.setup.answerTimeoutMs + 2 * STOP_GRACE_MS + this.setup.startTimeoutMs + 5_000, async () => {
      // Asked again under the lock: another process may have brought it back meanwhile; for a hang, this is the confirmation.
      const answer = await this.probe();
      if (answer.kind === 'ok') return { started: false, pidFile };
      if (answer.kind === 'hung') await this.stopHung(answer.why);
      // A daemon that died (kill -9, crash) leaves its pid file, and a daemonizing zfs-fuse then exits 1 silently (measured).
      const stale = await readPid(pidFile);
      if (stale !== undefined && !processAlive(stale)) await unlink(pidFile).catch(() => undefined);
      const child = spawn(daemon, ['-p', pidFile], { stdio: 'ignore', detached: true });
      child.on('error', () => undefined); // not startable: the wait below says so
      child.unref();
      const deadline = Date.now() + this.setup.startTimeoutMs;
      let last: Answer = answer;
      while (Date.now() < deadline) {
        last = await this.probe();
        if (last.kind === 'ok') return { started: true, pidFile };
        await new Promise((r) => setTimeout(r, 100));
      }
      const how = answer.kind === 'hung' ? `restarting it once because ${answer.why}` : `starting it (${answer.why})`;
      throw new Error(`zfs-fuse does not answer after ${how}: within ${this.setup.startTimeoutMs} ms, the last check said ${last.why}`);
    });
  }

  /** Stops the hung daemon named by the pid file: SIGTERM, then SIGKILL. Refuses when the pid file names no process of the daemon program. */
  private async stopHung(why: string): Promise<void> {
    const { daemon, pidFile } = this.setup;
    const pid = await readPid(pidFile);
    const argv = pid !== undefined ? await readFile(`/proc/${pid}/cmdline`, 'utf8').then((t) => t.split('\0'), () => []) : [];
    // argv[0] for the real daemon, argv[1] for one run by an interpreter (the fakes of the tests).
    if (pid === undefined || !argv.slice(0, 2).some((a) => basename(a) === basename(daemon))) {
      throw new Error(`zfs-fuse does not answer: ${why}, and ${pidFile} names ${pid === undefined ? 'no process' : `pid ${pid} (${argv.join(' ').trim() || 'not running'})`}, not a ${basename(daemon)} that test support may restart: restart the daemon by hand`);
    }
    process.kill(pid, 'SIGTERM');
    if (!(await exited(pid, STOP_GRACE_MS))) {
      process.kill(pid, 'SIGKILL');
      if (!(await exited(pid, STOP_GRACE_MS))) throw new Error(`zfs-fuse does not answer: ${why}, and its pid ${pid} survived SIGKILL for ${STOP_GRACE_MS} ms`);
    }
    await unlink(pidFile).catch(() => undefined);
  }
}

const shared = new ZfsFuseSupervisor();

/**
 * Makes sure the machine's zfs-fuse daemon answers, starting or restarting it once per process
 * (ZfsFuseSupervisor). Throws with what to do when zfs-fuse is not installed (scripts/install-deps.sh
 * installs it) or /dev/fuse is missing (modprobe fuse is tried), and with the command that hung
 * and its timeout when the daemon does not answer. Cheap when it answers (one `zpool list`):
 * zfs test files call it before each test.
 */
export function ensureZfsFuse(): Promise<ZfsFuseDaemon> {
  return shared.ensure();
}

async function readPid(pidFile: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
}

/** True once `pid` is gone (or a zombie) within `ms`. */
async function exited(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const state = await readFile(`/proc/${pid}/stat`, 'utf8').then((t) => t.slice(t.lastIndexOf(')') + 2, t.lastIndexOf(')') + 3), () => 'gone');
    if (state === 'gone' || state === 'Z' || !processAlive(pid)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `fn` holding `path` (created exclusively, holding our pid); a lock of a dead process, or an empty one older than 5 s, is taken over. */
async function withFileLock<T>(path: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = await readPid(path);
      const stale = owner !== undefined ? !processAlive(owner) : Date.now() - (await stat(path).then((s) => s.mtimeMs, () => 0)) > 5_000;
      if (stale) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (Date.now() >= deadline) throw new Error(`zfs-fuse is being restarted by pid ${String(owner)} (${path}) for more than ${waitMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => undefined);
  }
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

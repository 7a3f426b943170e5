import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { DisklessError, type ErrorCode } from '../../errors/index.js';

/** Where the `zfs` and `zpool` programs are (PATH names by default). */
export interface ZfsPrograms {
  readonly zfs: string;
  readonly zpool: string;
}

export const DEFAULT_ZFS_PROGRAMS: ZfsPrograms = { zfs: 'zfs', zpool: 'zpool' };

/**
 * Default of how long one command may take before it is killed (a create, get, snapshot...;
 * for send and receive: how long zfs may go without taking or giving a byte, or without
 * exiting once its input ended). zfs-fuse answers in ~5 ms, a busy pool syncing a txg in a
 * few seconds; a command still running after this is taken as hung (a stalled zfs-fuse
 * daemon never answers its clients).
 */
export const ZFS_COMMAND_TIMEOUT_MS = 120_000;
/** Largest stdout we accept from a metadata command (`zfs get -r` of a big tree). */
const MAX_OUTPUT = 64 * 1024 * 1024;

/** What one failed command said: the facts a STORE_ZFS (or mapped) error carries. */
export interface ZfsFailure {
  readonly command: string;
  readonly args: readonly string[];
  /** Exit status, or null when killed by a signal. */
  readonly status: number | null;
  readonly signal: string | null;
  readonly stderr: string;
  /** Set when the command was killed for not finishing within this many milliseconds. */
  readonly timeoutMs?: number;
}

/**
 * Which catalogue code a zfs/zpool failure means, from its stderr (the only place libzfs says
 * why; the exit status is 1 for everything). Wording checked against zfs-fuse 0.7 (pool
 * version 23) and OpenZFS 2.x messages; anything else stays STORE_ZFS.
 * `receiving`: the command was a `zfs receive`, where stream complaints mean a bad stream.
 */
export function classifyZfsFailure(stderr: string, receiving = false): ErrorCode {
  const s = stderr.toLowerCase();
  if (/out of space|no space left|quota exceeded/.test(s)) return 'STORE_NO_SPACE';
  if (receiving && /invalid backup stream|invalid stream|checksum mismatch|stream .*unsupported|bad magic|does not match incremental source|incremental source .*no longer exists|has been modified\s+since most recent snapshot/.test(s)) {
    return 'STORE_STREAM_INVALID';
  }
  if (/dataset already exists|tag already exists|destination '.*' exists|conflicting snapshot name|pool already exists/.test(s)) return 'STORE_EXISTS';
  if (/dataset does not exist|no such pool|no such tag|could not find any snapshots|does not exist/.test(s)) return 'STORE_NOT_FOUND';
  if (/has children|dependent clones|more recent snapshots exist/.test(s)) return 'STORE_HAS_DEPENDENTS';
  if (/is busy|device busy|resource busy/.test(s)) return 'STORE_BUSY';
  return 'STORE_ZFS';
}

/**
 * The DisklessError for a failed command: the mapped code, the command line, status and stderr
 * in `data`. A command killed for its timeout is STORE_ZFS saying so, with `timeoutMs`.
 */
export function zfsError(failure: ZfsFailure, what: string, context: Record<string, unknown> = {}, receiving = false): DisklessError {
  const command = [failure.command, ...failure.args].join(' ');
  if (failure.timeoutMs !== undefined) {
    return new DisklessError('STORE_ZFS', `cannot ${what}: ${command} did not finish within ${failure.timeoutMs} ms and was killed (is the zfs daemon hung?)`, {
      ...context,
      command,
      timeoutMs: failure.timeoutMs,
      status: failure.status,
      signal: failure.signal,
      stderr: failure.stderr,
    });
  }
  const code = classifyZfsFailure(failure.stderr, receiving);
  const why = failure.stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(0, 3).join('; ') || (failure.signal ? `killed by ${failure.signal}` : `exit status ${String(failure.status)}`);
  return new DisklessError(code, `cannot ${what}: ${command}: ${why}`, {
    ...context,
    command,
    status: failure.status,
    signal: failure.signal,
    stderr: failure.stderr,
  });
}

/**
 * Runs one zfs/zpool command (execFile: no shell, arguments passed as they are) and resolves
 * with its stdout; a non-zero exit rejects with `zfsError`. `what` completes "cannot ..." in
 * the message. A program that cannot be started at all (ENOENT) is STORE_ZFS with the errno;
 * one still running after `timeoutMs` is killed (SIGKILL) and rejects at once with STORE_ZFS
 * naming the command and the timeout, even if a child of it still holds its output open.
 */
export function runZfs(program: string, args: readonly string[], what: string, context: Record<string, unknown> = {}, timeoutMs = ZFS_COMMAND_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const child = execFile(program, args as string[], { maxBuffer: MAX_OUTPUT, encoding: 'utf8' }, (err, stdout, stderr) => {
      clearTimeout(timer);
      if (timedOut) return;
      if (!err) {
        resolve(stdout);
        return;
      }
      const e = err as NodeJS.ErrnoException & { code?: number | string; signal?: string | null };
      if (typeof e.code === 'string') {
        reject(new DisklessError('STORE_ZFS', `cannot ${what}: cannot run ${program}: ${e.message}`, { ...context, command: [program, ...args].join(' '), errno: e.code }, { cause: err }));
        return;
      }
      reject(zfsError({ command: program, args, status: typeof e.code === 'number' ? e.code : null, signal: e.signal ?? null, stderr: String(stderr) }, what, context));
    });
    const stderrSoFar: string[] = [];
    child.stderr?.on('data', (c: string) => {
      if (stderrSoFar.length < 64) stderrSoFar.push(c);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
      reject(zfsError({ command: program, args, status: null, signal: 'SIGKILL', stderr: stderrSoFar.join(''), timeoutMs }, what, context));
    }, timeoutMs);
  });
}

/** A running streaming command (`zfs send`, `zfs receive`) and how it ended. */
export interface ZfsProcess {
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects): status, signal, all of stderr, and `timeoutMs` when `within` killed it. */
  readonly done: Promise<ZfsFailure>;
  /**
   * `step` (a wait on the command: its next output, room in its input, its exit), unless it
   * takes longer than the command's timeout: then the command is killed (SIGKILL) and this
   * rejects with STORE_ZFS saying it did not finish within the timeout.
   */
  within<T>(step: Promise<T>, what: string, context: Record<string, unknown>): Promise<T>;
}

/** Starts `program args` with pipes for stdin/stdout, collecting stderr (no shell); `timeoutMs` bounds each `within` wait. */
export function spawnZfs(program: string, args: readonly string[], stdin: 'pipe' | 'ignore', timeoutMs = ZFS_COMMAND_TIMEOUT_MS): ZfsProcess {
  const child = spawn(program, args as string[], { stdio: [stdin, 'pipe', 'pipe'] });
  const errChunks: Buffer[] = [];
  child.stderr!.on('data', (c: Buffer) => {
    if (errChunks.length < 1024) errChunks.push(c);
  });
  let timedOut = false;
  const stderrText = (): string => Buffer.concat(errChunks).toString('utf8');
  const done = new Promise<ZfsFailure>((resolve) => {
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
    });
    const end = (status: number | null, signal: NodeJS.Signals | null): void => {
      const stderr = stderrText() + (spawnError ? `\n${spawnError.message}` : '');
      resolve({ command: program, args, status: spawnError && status === null ? -1 : status, signal, stderr, ...(timedOut ? { timeoutMs } : {}) });
    };
    child.on('close', end);
    // Killed for its timeout: do not wait for a child of it that may still hold the pipes.
    child.on('exit', (status, signal) => {
      if (timedOut) end(status, signal);
    });
  });
  const within = <T>(step: Promise<T>, what: string, context: Record<string, unknown>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
        reject(zfsError({ command: program, args, status: null, signal: 'SIGKILL', stderr: stderrText(), timeoutMs }, what, context));
      }, timeoutMs);
      step.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  return { child, done, within };
}

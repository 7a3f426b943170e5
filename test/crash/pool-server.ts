/**
 * Starts `diskless export iscsi VOLUME --pool DIR [--mirror DIR] [--capacity N]` (the real CLI,
 * dist/src/cli/main.js) as a child process serving one volume of an embedded pool, waits for
 * its `listening on` line, and logs a client in. The crash test kills it with SIGKILL; `stop`
 * ends it with SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import { IscsiTestClient } from '../support/iscsi-client.js';
import { BULK_LOGIN_KEYS } from '../support/scsi-io.js';

/** dist/src/cli/main.js, from dist/test/crash/. */
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

/** What the child serves. */
export interface PoolServerOptions {
  readonly pool: string;
  readonly mirror?: string;
  readonly capacity?: number;
  readonly volume: string;
  readonly iqn: string;
  readonly port: number;
}

/** A running child server. */
export interface PoolServer {
  readonly child: ChildProcess;
  /** Resolves with the exit code or signal when the child has exited. */
  readonly exited: Promise<string>;
  /** stderr so far (why it failed to start). */
  stderr(): string;
}

/** Spawns the server and resolves once it accepts logins (rejects with its stderr if it dies first). */
export async function startPoolServer(o: PoolServerOptions, timeoutMs = 15_000): Promise<PoolServer> {
  const args = [CLI, 'export', 'iscsi', o.volume, '--pool', o.pool, '--iqn', o.iqn, '--listen', `127.0.0.1:${o.port}`];
  if (o.mirror) args.push('--mirror', o.mirror);
  if (o.capacity !== undefined) args.push('--capacity', String(o.capacity));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pool server did not start within ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`pool server ended (${how}) before listening: ${err}`));
    });
  });
  return { child, exited, stderr: () => err };
}

/** Logs a new client in to the child's target (no CHAP), unit attention consumed. */
export async function loginTo(o: PoolServerOptions): Promise<IscsiTestClient> {
  const client = await IscsiTestClient.connect(o.port);
  const r = await client.login({ target: o.iqn, initiatorName: 'iqn.2026-11.io.diskless:dl4d-crash', keys: BULK_LOGIN_KEYS });
  if (r.statusClass !== 0) throw new Error(`login to ${o.iqn} failed: class ${r.statusClass} detail ${r.statusDetail}`);
  return client;
}

/** SIGTERM and wait; SIGKILL if it has not exited after `graceMs`. */
export async function stopPoolServer(s: PoolServer, graceMs = 5000): Promise<string> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.exited;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
  try {
    return await s.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the built `diskless` command (dist) as a child process, for CLI tests. */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/src/cli/main.js of this checkout. */
export const CLI = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'), 'dist', 'src', 'cli', 'main.js');

export interface CliRun {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/**
 * `diskless ARGS` with `input` on stdin (closed at once without it); resolves with the exit
 * code and both outputs. Killed after `timeoutMs`.
 */
export function runCli(args: readonly string[], o: { input?: Buffer; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.stdin.on('error', () => undefined); // the command may exit before reading all of it
    child.stdin.end(o.input ?? Buffer.alloc(0));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout: Buffer.concat(out), stderr });
    });
  });
}

/**
 * Runs a shell pipeline (bash, `set -o pipefail`) where `$DISKLESS` is the command; resolves
 * with the pipeline's status (the last failing stage's) and its outputs.
 */
export function runPipeline(script: string, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((done, reject) => {
    const child = spawn('bash', ['-c', `set -o pipefail\n${script}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DISKLESS: `${process.execPath} ${CLI}` } });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout: Buffer.concat(out), stderr });
    });
  });
}

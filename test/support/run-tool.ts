/** Runs external interop tools (libiscsi, qemu-io...) for tests without throwing on failure. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Runs `cmd` (with `env` added to this process's environment); resolves with its exit code
 * (-1 when it could not run or timed out) and stdout+stderr.
 */
export async function runTool(cmd: string, args: readonly string[], timeout = 60_000, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { timeout, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}${String(err)}` };
  }
}

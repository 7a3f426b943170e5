/**
 * Helpers shared by the side-by-side benchmarks (boot, tftp, iscsi, store): medians, a peer or
 * server process's CPU time from /proc, waiting for a child's ready line, and the two iSCSI
 * load generators (libiscsi's iscsi-perf for reads, qemu-img bench for writes).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Median of a non-empty list (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** User + system CPU seconds a process has used so far (/proc/PID/stat, USER_HZ 100). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resolves once `child` prints `text` on stdout; rejects if it exits first or after `timeoutMs`. */
export function waitForLine(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`server did not print "${text}" within ${timeoutMs} ms: ${seen}`)), timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${seen}`)));
  });
}

/**
 * Reads with libiscsi's iscsi-perf for `seconds`: `blocks` 512-byte blocks per command, 32
 * outstanding, sequential or (`random`) random offsets. Returns the average IOPS it reports.
 */
export async function iscsiPerf(url: string, seconds: number, blocks: number, random: boolean): Promise<number> {
  const args = ['-t', String(seconds), '-b', String(blocks), '-m', '32', ...(random ? ['-r'] : []), url];
  const { stdout } = await execFileP('iscsi-perf', args, { timeout: (seconds + 30) * 1000 });
  const m = /iops average (\d+) \([\d.]+ MB\/s\)\s*\n+finished/.exec(stdout) ?? [...stdout.matchAll(/iops average (\d+)/g)].at(-1);
  if (!m) throw new Error(`iscsi-perf ${args.join(' ')}: no average in output: ${stdout.slice(-400)}`);
  return Number(m[1]);
}

/**
 * Writes with `qemu-img bench -w` (O_DIRECT, no flush): `count` requests of `size` ("4k",
 * "64k"), `depth` outstanding, each `step` bytes after the previous (default: `size`). Returns IOPS.
 */
export async function qemuBench(url: string, count: number, depth: number, size: string, step?: number): Promise<number> {
  const args = ['bench', '-f', 'raw', '-t', 'none', '-n', '-w', '-c', String(count), '-d', String(depth), '-s', size, ...(step ? ['-S', String(step)] : []), url];
  const { stdout } = await execFileP('qemu-img', args, { timeout: 300_000 });
  const m = /Run completed in ([\d.]+) seconds/.exec(stdout);
  if (!m) throw new Error(`qemu-img ${args.join(' ')}: ${stdout}`);
  return count / Number(m[1]);
}

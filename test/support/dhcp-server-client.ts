/**
 * Starts test/support/dhcp-server-process.ts inside a network namespace and talks to it: the
 * interop and e2e DHCP tests use it to run our server in its own namespace beside peers.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnIn } from '../../src/lab/netns.js';

export interface DhcpServerProcess {
  /** Prometheus text of the server's metrics. */
  metrics(): Promise<string>;
  /** Value of one series in the metrics text (0 when absent). */
  metric(series: string): Promise<number>;
  /** Stops the server cleanly (then SIGKILL after 5 s). Safe twice. */
  stop(): Promise<void>;
  /** stderr so far (debug logs with DD_DHCP_DEBUG=1). */
  readonly stderr: () => string;
}

/** Spawns the server in `ns` with `options` (see dhcp-server-process.ts); resolves once it answers. */
export async function startDhcpServerProcess(ns: string, options: Record<string, unknown>, timeoutMs = 15_000): Promise<DhcpServerProcess> {
  const script = fileURLToPath(new URL('./dhcp-server-process.js', import.meta.url));
  const child: ChildProcess = spawnIn(ns, process.execPath, [script, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiting: Array<(o: Record<string, unknown>) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(JSON.parse(line) as Record<string, unknown>));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const next = (ms: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`dhcp server process: no answer in ${ms} ms; stderr: ${stderr}`)), ms);
      waiting.push((o) => {
        clearTimeout(timer);
        resolve(o);
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`dhcp server process exited (${code}); stderr: ${stderr}`));
      });
    });
  await next(timeoutMs);
  let stopped: Promise<void> | undefined;
  const proc: DhcpServerProcess = {
    async metrics() {
      const reply = next(10_000);
      child.stdin!.write('metrics\n');
      return String((await reply).text);
    },
    async metric(series) {
      const text = await proc.metrics();
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line ? Number(line.slice(series.length + 1)) : 0;
    },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode !== null) return;
        child.stdin!.write('stop\n');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      })();
      return stopped;
    },
    stderr: () => stderr,
  };
  return proc;
}

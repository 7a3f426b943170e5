/**
 * Drives test/support/raw-peer.ts inside a network namespace: spawn it on one end of a veth
 * pair, send it JSON commands, await its JSON replies in order. Used by the raw-socket and RA
 * tests to put a real second host on the wire.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnIn } from '../../src/lab/netns.js';

export interface RawPeerReply {
  readonly ok?: boolean;
  readonly error?: string;
  readonly code?: string;
  readonly count?: number;
  readonly frames?: string[];
  readonly sent?: number;
  readonly busy?: number;
}

export interface RawPeer {
  /** The peer interface's MAC, lower-case hex without separators. */
  readonly mac: string;
  request(command: Record<string, unknown>, timeoutMs?: number): Promise<RawPeerReply>;
  /** Ends the peer (closes its stdin, then SIGKILL after 2 s). Safe twice. */
  stop(): Promise<void>;
}

/** Starts the peer in `ns` on `ifname` for `etherType`; resolves once its socket is open. */
export async function startRawPeer(ns: string, ifname: string, etherType: number, timeoutMs = 10_000): Promise<RawPeer> {
  const script = fileURLToPath(new URL('./raw-peer.js', import.meta.url));
  const child: ChildProcess = spawnIn(ns, process.execPath, [script, ifname, String(etherType)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiting: Array<(line: string) => void> = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => waiting.shift()?.(line));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = (ms: number) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw peer: no reply in ${ms} ms; stderr: ${stderr}`)), ms);
      waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`raw peer exited; stderr: ${stderr}`));
      });
    });
  const ready = JSON.parse(await next(timeoutMs)) as { mac: string };
  let stopped = false;
  return {
    mac: ready.mac,
    async request(command, ms = 30_000) {
      const reply = next(ms);
      child.stdin!.write(JSON.stringify(command) + '\n');
      return JSON.parse(await reply) as RawPeerReply;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}
